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
  lifecycleSubject,
} from "../protocol/index.js";
import { isDnsName } from "../types/index.js";
import type { BrokerConnection, BrokerSubscription } from "../transport/index.js";
import type { IntakeSource } from "./queue.js";

export interface IntakeOptions {
  lifecycleComponent: string;
  /** alive events of lifecycleComponent too: a server in provisioning mode sends one every 30 minutes */
  aliveEvents?: boolean;
  registration: boolean;
  legacyRegistration: boolean;
  /** identities must also match this (anchored); every identity must be a DNS name regardless */
  identityPattern?: RegExp;
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
  /** two discovery replies from one identity: two servers answer as that node */
  duplicate(identity: string): void;
}

export interface Discoverer {
  discover(o: { timeoutMs: number; quietMs: number; onNode?: (identity: string) => void; onDuplicate?: (identity: string) => void }): Promise<string[]>;
}

export class Intake {
  private subs: BrokerSubscription[] = [];
  private timer?: NodeJS.Timeout;
  private rediscovery: NodeJS.Timeout[] = [];
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
      this.accept(d.event.identity, "event", `${d.type} event`, d.type === "startup");
    } catch (e) {
      this.hooks.invalid("event", e instanceof ProtocolError ? e.code : "error", (e as Error).message);
    }
  }

  private onRegistration(data: Uint8Array): void {
    try {
      const d = decodeRegistration(data);
      this.accept(d.identity, "registration", "registration");
    } catch (e) {
      this.hooks.invalid("registration", e instanceof ProtocolError ? e.code : "error", (e as Error).message);
    }
  }

  /** "bad_identity": not a DNS name; "identity_pattern": not matching intake.identity_pattern */
  private identityProblem(identity: unknown): "bad_identity" | "identity_pattern" | undefined {
    if (typeof identity !== "string" || !isDnsName(identity)) return "bad_identity";
    if (this.o.identityPattern && !this.o.identityPattern.test(identity)) return "identity_pattern";
    return undefined;
  }

  private accept(identity: string, source: IntakeSource, what: string, startup = false): void {
    const problem = this.identityProblem(identity);
    if (!problem) return this.hooks.offer(identity, source, startup);
    // JSON.stringify shows control characters escaped; the length bound keeps a 1 MB name out of the log
    const shown = JSON.stringify(String(identity).slice(0, 100));
    this.hooks.invalid(source, problem, problem === "bad_identity" ? `${what} from ${shown}, which is not a valid DNS name: refused` : `${what} from ${shown}, which does not match intake.identity_pattern: refused`);
  }

  /**
   * The broker connection came back: announcements made while it was down reached nobody, and a
   * node that announced then would wait for the next cycle (minutes). One discovery after each
   * of `delaysMs`, as the fleet subscribes again; a flapping link gets them once, after its last
   * return. Nothing when discovery is off.
   */
  rediscoverAfter(delaysMs: readonly number[]): void {
    if (this.stopped || (this.o.discoveryIntervalMs <= 0 && !this.o.discoverAtStart)) return;
    this.rediscovery.forEach(clearTimeout);
    this.rediscovery = delaysMs.map((ms) => setTimeout(() => void this.discoverNow(), ms));
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
          onNode: (id) => this.accept(id, "discovery", "discovery reply"),
          onDuplicate: (id) => {
            if (!this.identityProblem(id)) this.hooks.duplicate(id);
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
    this.rediscovery.forEach(clearTimeout);
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    await this.discovering;
  }
}
