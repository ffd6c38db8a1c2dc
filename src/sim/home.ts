/**
 * A restarted node's home, as go-choria's server reaches it: it dials the brokers of its new
 * configuration (`plugin.choria.middleware_hosts`), retrying for ever while none answers
 * (choria/connection.go: backoff up to 5 s), and once connected publishes its `startup` event
 * with component `server` there (server/instance.go, Run). A node whose brokers are all
 * unreachable never arrives, and one with the `rejected_at_home` fault never does either: the
 * broker refuses its certificate and the server keeps retrying.
 *
 * Nodes share one connection per broker URL (a fleet of 100k cannot open 100k sockets); a node
 * waiting for a broker is parked on its link, so a stranded fleet costs no timers. Home links are
 * plain NATS: the simulated node does not present its certificate.
 */
import { headers, type NatsConnection } from "nats";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent, nodeSubject } from "../protocol/index.js";
import { closeNats, connectNats } from "../transport/connection.js";
import { hasFault } from "./faults.js";
import type { SimNode } from "./node.js";
import { rngFor } from "./prng.js";

interface Link {
  url: string;
  nc?: NatsConnection;
  up: boolean;
  connecting: boolean;
  attempts: number;
  /** stranded nodes waiting for this broker */
  waiters: Set<SimNode>;
}

export interface HomeOptions {
  seed: number;
  format: "cloudevent" | "choria";
  /** a stranded node retries within this long of its broker coming back; default 5000 (go-choria's backoff ceiling) */
  retryMs?: number;
  /** schedules fn after ms unless the fleet stopped */
  later(ms: number, fn: () => void): void;
  arrived(node: SimNode, url: string): void;
  stranded(node: SimNode, why: string): void;
  /**
   * A directed request on a home broker (`<collective>.node.<identity>`); false when no node of
   * this fleet is there. Set: the links subscribe to every node subject.
   */
  request?(url: string, subject: string, data: Uint8Array, publish: (subject: string, bytes: Uint8Array) => void): boolean;
  /** answer for absent nodes with no responders, as the broker would (see FleetOptions.noResponders) */
  noResponders?: boolean;
}

export const MIDDLEWARE_HOSTS = "plugin.choria.middleware_hosts";
const PROVISIONING_NODE_PREFIX = nodeSubject("");

/** go-choria accepts host:port and nats://host:port */
export function homeUrls(cfg: Record<string, string> | undefined): string[] {
  return (cfg?.[MIDDLEWARE_HOSTS] ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean)
    .map((h) => (/^[a-z]+:\/\//i.test(h) ? h : `nats://${h}`));
}

export class HomeLinks {
  private readonly links = new Map<string, Link>();
  private stopped = false;

  constructor(private readonly o: HomeOptions) {}

  /** the node restarted as a server with this configuration: it goes home */
  goHome(node: SimNode, cfg: Record<string, string> | undefined): void {
    const urls = homeUrls(cfg);
    if (urls.length === 0) return this.o.stranded(node, `no ${MIDDLEWARE_HOSTS} in its configuration`);
    if (hasFault(node.faults, "rejected_at_home")) return this.o.stranded(node, "rejected_at_home: its brokers refuse its certificate");
    this.attempt(node, urls);
  }

  private attempt(node: SimNode, urls: string[]): void {
    if (this.stopped) return;
    // nats.go tries the servers in random order
    const start = Math.floor(rngFor(this.o.seed, `home:${node.restartCount}`, node.identity)() * urls.length);
    for (let i = 0; i < urls.length; i++) {
      const link = this.link(urls[(start + i) % urls.length]!);
      if (link.up && link.nc) return this.publish(node, link);
    }
    this.o.stranded(node, `none of ${urls.join(",")} is reachable`);
    for (const u of urls) {
      const link = this.link(u);
      link.waiters.add(node);
      this.connect(link);
    }
  }

  private publish(node: SimNode, link: Link): void {
    for (const l of this.links.values()) l.waiters.delete(node);
    const e = newLifecycleEvent("startup", node.identity, "server", { version: node.version });
    link.nc!.publish(lifecycleSubject("startup", "server"), encodeLifecycle(e, this.o.format));
    this.o.arrived(node, link.url);
  }

  private link(url: string): Link {
    let l = this.links.get(url);
    if (!l) {
      l = { url, up: false, connecting: false, attempts: 0, waiters: new Set() };
      this.links.set(url, l);
    }
    return l;
  }

  private connect(l: Link): void {
    if (this.stopped || l.connecting || l.nc) return;
    l.connecting = true;
    connectNats({ servers: l.url, name: "choria-sim-home", reconnectWaitMs: 250, timeoutMs: 2000 }).then(
      (nc) => {
        l.connecting = false;
        if (this.stopped) return void closeNats(nc);
        l.nc = nc;
        const onRequest = this.o.request;
        if (onRequest) {
          // every node at home is subscribed to its node subjects: one wildcard for the link,
          // which then answers for nodes that are not there as the broker would
          nc.subscribe("*.node.>", {
            callback: (err, msg) => {
              // a home that is also the provisioning broker: those subjects are the shards' (shards.ts)
              if (err || msg.subject.startsWith(PROVISIONING_NODE_PREFIX)) return;
              const publish = (subject: string, bytes: Uint8Array): void => nc.publish(subject, bytes);
              if (!onRequest(l.url, msg.subject, msg.data, publish) && this.o.noResponders !== false && msg.reply) nc.publish(msg.reply, new Uint8Array(0), { headers: headers(503, "No Responders") });
            },
          });
        }
        void (async () => {
          for await (const s of nc.status()) {
            if (s.type === "disconnect") l.up = false;
            else if (s.type === "reconnect") this.became(l);
          }
        })().catch(() => undefined);
        this.became(l);
      },
      () => {
        l.connecting = false;
        l.attempts++;
        // retry while someone waits for this broker, backing off as go-choria does
        if (l.waiters.size) this.o.later(Math.min(5000, 250 * 2 ** Math.min(l.attempts, 5)), () => this.connect(l));
      },
    );
  }

  /** the broker answers (again): each node parked on it connects at its next retry */
  private became(l: Link): void {
    l.up = true;
    const retry = this.o.retryMs ?? 5000;
    for (const node of l.waiters) {
      const delay = Math.floor(rngFor(this.o.seed, `home-retry:${l.attempts}`, node.identity)() * retry);
      this.o.later(delay, () => {
        if (!l.waiters.has(node)) return;
        if (l.up && l.nc && !l.nc.isClosed()) this.publish(node, l);
      });
    }
  }

  /** nodes parked on a broker that never answered */
  get strandedCount(): number {
    const s = new Set<SimNode>();
    for (const l of this.links.values()) for (const n of l.waiters) s.add(n);
    return s.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.links.values()].map((l) => closeNats(l.nc)));
  }
}
