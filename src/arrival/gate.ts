/**
 * The DeciderGate the provisioner asks once per node: the rollout says which version may decide
 * (a worker waits while a canary's budget is spent or the rollout is paused), and every decision
 * to configure a node into an unhealthy broker set becomes a deferral with the set's reason.
 */
import { deferDecision, type Decider, type DeciderGate, type DeciderLease, type Decision, type DecisionRecord } from "../types/index.js";
import type { BrokerSetHealth } from "./health.js";
import type { Rollout } from "./rollout.js";

export interface GateHooks {
  /** a configure decision about to be applied: its home can be watched before the node restarts */
  deciding?(decision: Decision): void;
  /** a node's flow ended: the loop starts waiting for it if it was restarted */
  ended(record: DecisionRecord, trial: boolean): void;
}

export class RolloutGate implements DeciderGate {
  private waiters: Array<() => void> = [];
  private readonly guarded = new WeakMap<Decider, Decider>();

  constructor(
    private readonly rollout: Rollout,
    private readonly health: BrokerSetHealth,
    private readonly hooks: GateHooks,
  ) {}

  /** the rollout or a broker set changed: waiting workers look again */
  changed(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get waiting(): number {
    return this.waiters.length;
  }

  async acquire(signal: AbortSignal): Promise<DeciderLease | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      const a = this.rollout.admit();
      if (a) {
        if (signal.aborted) {
          if (a.trial) this.rollout.released(a.decider.ref.hash);
          return undefined;
        }
        return this.lease(a.decider, a.trial);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  private lease(decider: Decider, trial: boolean): DeciderLease {
    let ended = false;
    return {
      decider: this.guard(decider),
      end: (record) => {
        if (ended) return;
        ended = true;
        if (!record) {
          if (trial) this.rollout.released(decider.ref.hash);
        } else {
          // the rollout hears of the restart before any arrival verdict the hook may produce
          this.rollout.ended(decider.ref.hash, trial, record.outcome === "configure", record.brokerSet);
          this.hooks.ended(record, trial);
        }
        this.changed();
      },
    };
  }

  private guard(d: Decider): Decider {
    let g = this.guarded.get(d);
    if (!g) {
      g = {
        ref: d.ref,
        decide: async (ctx) => {
          const dec = await d.decide(ctx);
          if (dec.outcome !== "configure") return dec;
          const why = this.health.check(dec.brokerSet, dec.brokers);
          if (why) return { ...deferDecision(why, dec.policy), fired: dec.fired, brokerSet: dec.brokerSet };
          this.hooks.deciding?.(dec);
          return dec;
        },
      };
      this.guarded.set(d, g);
    }
    return g;
  }
}
