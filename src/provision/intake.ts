/**
 * Intake: everything that tells us a node is waiting. Lifecycle startup and alive events (both
 * formats), periodic broadcast discovery (and once at start), and registration data on the
 * current and the 2018 subjects. Each source hands identities to one `offer` callback;
 * bad messages are counted by source and reason and never stop the subscription.
 */
import {
  LEGACY_REGISTRATION_SUBJECT,
  ProtocolError,
  REGISTRATION_SUBJECT,
  decodeLifecycle,
  decodeRegistration,
  isValidIdentity,
  lifecycleSubject,
} from "../protocol/index.js";
import type { BrokerConnection, BrokerSubscription } from "../transport/index.js";
import type { IntakeSource } from "./queue.js";

export interface IntakeOptions {
  lifecycleComponent: string;
  /** alive events of lifecycleComponent too: a server in provisioning mode sends one every 30 minutes */
  aliveEvents?: boolean;
  registration: boolean;
  legacyRegistration: boolean;
  discoveryIntervalMs: number;
  discoveryTimeoutMs: number;
  discoveryQuietMs: number;
  discoverAtStart: boolean;
}

export interface IntakeHooks {
  /** `startup`: a startup event, i.e. a new process of the node, whatever the old one was doing */
  offer(identity: string, source: IntakeSource, startup?: boolean): void;
  /** may discovery run now (not paused, leader) */
  active(): boolean;
  invalid(source: IntakeSource, reason: string, detail: string): void;
  discoveryCycle(found: number): void;
  discoveryError(e: Error): void;
}

export interface Discoverer {
  discover(o: { timeoutMs: number; quietMs: number; onNode?: (identity: string) => void }): Promise<string[]>;
}

export class Intake {
  private subs: BrokerSubscription[] = [];
  private timer?: NodeJS.Timeout;
  private discovering?: Promise<number>;
  private stopped = false;

  constructor(
    private readonly nc: BrokerConnection,
    private readonly discoverer: Discoverer,
    private readonly hooks: IntakeHooks,
    private readonly o: IntakeOptions,
  ) {}

  start(): void {
    if (this.o.lifecycleComponent) {
      this.subs.push(this.nc.subscribe(lifecycleSubject("startup", this.o.lifecycleComponent), { callback: (_e, m) => this.onLifecycle(m.data) }));
      if (this.o.aliveEvents) this.subs.push(this.nc.subscribe(lifecycleSubject("alive", this.o.lifecycleComponent), { callback: (_e, m) => this.onLifecycle(m.data) }));
    }
    if (this.o.registration) this.subs.push(this.nc.subscribe(REGISTRATION_SUBJECT, { callback: (_e, m) => this.onRegistration(m.data) }));
    if (this.o.legacyRegistration) this.subs.push(this.nc.subscribe(LEGACY_REGISTRATION_SUBJECT, { callback: (_e, m) => this.onRegistration(m.data) }));
    if (this.o.discoverAtStart) void this.discoverNow();
    if (this.o.discoveryIntervalMs > 0) this.timer = setInterval(() => void this.discoverNow(), this.o.discoveryIntervalMs);
  }

  private onLifecycle(data: Uint8Array): void {
    try {
      const d = decodeLifecycle(data);
      if (d.type !== "startup" && d.type !== "alive") return;
      if (!isValidIdentity(d.event.identity)) return this.hooks.invalid("event", "bad_identity", `${d.type} event with unusable identity ${JSON.stringify(d.event.identity)}`);
      this.hooks.offer(d.event.identity, "event", d.type === "startup");
    } catch (e) {
      this.hooks.invalid("event", e instanceof ProtocolError ? e.code : "error", (e as Error).message);
    }
  }

  private onRegistration(data: Uint8Array): void {
    try {
      const d = decodeRegistration(data);
      if (!isValidIdentity(d.identity)) return this.hooks.invalid("registration", "bad_identity", `registration from unusable identity ${JSON.stringify(d.identity)}`);
      this.hooks.offer(d.identity, "registration");
    } catch (e) {
      this.hooks.invalid("registration", e instanceof ProtocolError ? e.code : "error", (e as Error).message);
    }
  }

  /** Runs one discovery cycle unless one is running; resolves with the number of nodes found. */
  discoverNow(): Promise<number> {
    if (this.stopped || !this.hooks.active()) return Promise.resolve(0);
    if (this.discovering) return this.discovering;
    this.discovering = (async () => {
      try {
        const found = await this.discoverer.discover({
          timeoutMs: this.o.discoveryTimeoutMs,
          quietMs: this.o.discoveryQuietMs,
          onNode: (id) => {
            if (isValidIdentity(id)) this.hooks.offer(id, "discovery");
            else this.hooks.invalid("discovery", "bad_identity", `discovery reply from unusable identity ${JSON.stringify(id)}`);
          },
        });
        this.hooks.discoveryCycle(found.length);
        return found.length;
      } catch (e) {
        this.hooks.discoveryError(e as Error);
        return 0;
      } finally {
        this.discovering = undefined;
      }
    })();
    return this.discovering;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    await this.discovering;
  }
}
