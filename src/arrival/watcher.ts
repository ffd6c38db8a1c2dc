/**
 * Watches home brokers for servers' startup events. go-choria's server publishes
 * `choria.lifecycle.event.startup.server` once per process start, right after it connected to
 * its brokers, subscribed its agents and collectives (server/instance.go, Run), so the event on a
 * home broker means: the node reached its home with the credentials we gave it and serves there.
 *
 * Configured homes (`arrival.homes`) connect at start; a node whose broker set none of them
 * covers is watched on its own brokers, connected when the first such decision is made. Every
 * connection retries for ever: a home that is down is a reason for nodes to be lost, not for the
 * daemon to stop.
 */
import type { Logger } from "pino";
import { decodeLifecycle, isValidIdentity, lifecycleSubject } from "../protocol/index.js";
import { closeNats, connectNats, type NatsOptions } from "../transport/index.js";

export type HomeConnection = Awaited<ReturnType<typeof connectNats>>;

/** how to log in to a home broker: what NatsOptions takes besides the servers */
export type HomeCredentials = Pick<NatsOptions, "tls" | "user" | "pass" | "token" | "credsFile">;

export interface HomeSpec {
  name: string;
  brokers: string[];
  /** the broker sets whose nodes it sees; undefined: every broker set */
  brokerSets?: string[];
  credentials: HomeCredentials;
}

export interface WatchHooks {
  seen(identity: string, home: string): void;
  connected(home: string): void;
  disconnected(home: string): void;
  invalid(home: string, detail: string): void;
}

export interface HomeStatus {
  name: string;
  brokers: string[];
  brokerSets?: string[];
  connected: boolean;
  /** configured in arrival.homes, or the brokers of a broker set no configured home covers */
  configured: boolean;
}

interface Home {
  spec: HomeSpec;
  configured: boolean;
  connected: boolean;
  nc?: HomeConnection;
  connecting?: Promise<void>;
}

const SUBJECT = lifecycleSubject("startup", "server");

/** nats URLs as a home is keyed: brokers are written host:port or with a scheme */
export function brokerUrls(brokers: readonly string[]): string[] {
  return [...new Set(brokers.map((b) => (/^[a-z]+:\/\//i.test(b) ? b : `nats://${b}`)))].sort();
}

export class HomeWatches {
  private readonly homes = new Map<string, Home>();
  private stopped = false;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    specs: HomeSpec[],
    private readonly auto: HomeCredentials,
    private readonly hooks: WatchHooks,
    private readonly log: Logger,
    private readonly name: string,
  ) {
    for (const spec of specs) this.homes.set(spec.name, { spec, configured: true, connected: false });
  }

  start(): void {
    for (const h of this.homes.values()) this.connect(h);
  }

  /** The homes that see nodes of this broker set, opening a watch on its brokers if none does. */
  homesFor(brokerSet: string | undefined, brokers: readonly string[]): string[] {
    const out: string[] = [];
    for (const h of this.homes.values()) {
      if (!h.configured) continue;
      if (!h.spec.brokerSets || (brokerSet !== undefined && h.spec.brokerSets.includes(brokerSet))) out.push(h.spec.name);
    }
    if (out.length || brokers.length === 0) return out;
    const urls = brokerUrls(brokers);
    const name = urls.join(",");
    if (!this.homes.has(name)) {
      const h: Home = { spec: { name, brokers: urls, credentials: this.auto }, configured: false, connected: false };
      this.homes.set(name, h);
      this.connect(h);
    }
    return [name];
  }

  /**
   * The first connection is retried here, on a timer stop() clears: nats.js's own retry of a first
   * connection cannot be cancelled and would keep a stopping daemon alive. Once connected, nats.js
   * reconnects for ever.
   */
  private connect(h: Home, attempt = 0): void {
    if (this.stopped || h.connecting) return;
    h.connecting = (async () => {
      let nc: HomeConnection;
      try {
        nc = await connectNats({
          servers: h.spec.brokers,
          name: `${this.name}-arrival`,
          ...h.spec.credentials,
          // back soon after its broker is: a server that connects before we resubscribe is missed
          reconnectWaitMs: 250,
          timeoutMs: 2000,
          onStatus: (type) => {
            if (type === "disconnect") this.down(h);
            else if (type === "reconnect") this.up(h);
          },
        });
      } catch (e) {
        h.connecting = undefined;
        if (this.stopped) return;
        if (attempt === 0 || attempt % 20 === 0) this.log.error({ home: h.spec.name, err: (e as Error).message, attempt }, "arrival watch cannot connect; retrying");
        const t = setTimeout(() => {
          this.retries.delete(t);
          this.connect(h, attempt + 1);
        }, Math.min(5000, 250 * 2 ** Math.min(attempt, 5)));
        this.retries.add(t);
        return;
      }
      if (this.stopped) return void (await closeNats(nc));
      h.nc = nc;
      nc.subscribe(SUBJECT, { callback: (_e, m) => this.onEvent(h, m.data) });
      await nc.flush().catch(() => undefined);
      this.up(h);
      void nc.closed().then((e) => {
        if (e && !this.stopped) this.log.error({ home: h.spec.name, err: e.message }, "arrival watch connection closed");
        this.down(h);
      });
    })();
  }

  private up(h: Home): void {
    h.connected = true;
    this.hooks.connected(h.spec.name);
  }

  private down(h: Home): void {
    if (!h.connected) return;
    h.connected = false;
    this.hooks.disconnected(h.spec.name);
    if (!this.stopped) this.log.warn({ home: h.spec.name }, "arrival watch disconnected: nodes arriving there are not seen until it is back");
  }

  private onEvent(h: Home, data: Uint8Array): void {
    try {
      const d = decodeLifecycle(data);
      if (d.type !== "startup") return;
      if (!isValidIdentity(d.event.identity)) return this.hooks.invalid(h.spec.name, `startup event with unusable identity ${JSON.stringify(d.event.identity)}`);
      this.hooks.seen(d.event.identity, h.spec.name);
    } catch (e) {
      this.hooks.invalid(h.spec.name, (e as Error).message);
    }
  }

  /** the configured homes' names, in configuration order */
  configured(): string[] {
    return [...this.homes.values()].filter((h) => h.configured).map((h) => h.spec.name);
  }

  /** a home's connection while it is connected: renewal's requests ride on it */
  connection(name: string): HomeConnection | undefined {
    const h = this.homes.get(name);
    return h?.connected && h.nc && !h.nc.isClosed() ? h.nc : undefined;
  }

  status(): HomeStatus[] {
    return [...this.homes.values()].map((h) => ({ name: h.spec.name, brokers: h.spec.brokers, brokerSets: h.spec.brokerSets, connected: h.connected, configured: h.configured }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.all([...this.homes.values()].map((h) => h.connecting));
    await Promise.all([...this.homes.values()].map((h) => closeNats(h.nc)));
  }
}
