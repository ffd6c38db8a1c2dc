/**
 * When a node is tried again after its flow ended without a result: a failed node (error) on an
 * exponential backoff with jitter, first within seconds; a node nothing answers for (gone) a few
 * times while the broker link is settling (the nodes may not have resubscribed yet), and not at
 * all otherwise: a node announces itself once subscribed, so no subscriber then means it is not
 * there (a phantom announcement, or a node that left provisioning mode), and retrying every
 * phantom would multiply what a flood of them costs; a deferred node held with its own, longer
 * backoff (or the time the policy asked for), then tried again; a node whose restart went
 * unanswered held while it would restart, then tried again: if the request never reached it (lost
 * with a broker outage), it is still in provisioning mode and nothing else would announce it; if
 * it did restart, the retry's first request meets no subscriber and ends it as gone. None of it
 * waits for discovery.
 */
import { backoffMs } from "./steps.js";

export interface RetryPolicy {
  /** first retry of a failed node after 0.5–1 × baseMs, doubling up to maxMs */
  baseMs: number;
  maxMs: number;
  /**
   * retries of a node nothing answers for, while the broker link is settling, before it is left to
   * intake; failures of other kinds (those of the outage itself) do not use them up
   */
  goneTries: number;
  /** how long after the broker connection dropped or came back nodes nothing answers for are retried */
  settlingMs: number;
  /** a deferred node's first hold, doubling up to deferMaxMs */
  deferBaseMs: number;
  deferMaxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 1000, maxMs: 60_000, goneTries: 3, settlingMs: 30_000, deferBaseMs: 30_000, deferMaxMs: 600_000 };

export type RetryPlan = { retryInMs: number } | { holdMs: number; thenRetry: boolean };

/** Per-node counts of failures and deferrals in a row; forgotten when a node settles. */
export class RetryBook {
  /** failures in a row (the backoff's exponent), and how many of them were gone */
  private readonly failures = new Map<string, { n: number; gone: number }>();
  private readonly deferrals = new Map<string, number>();

  constructor(private readonly p: RetryPolicy = DEFAULT_RETRY) {}

  /** how long after the broker connection dropped or came back nodes nothing answers for are retried */
  get settlingMs(): number {
    return this.p.settlingMs;
  }

  get size(): number {
    return this.failures.size + this.deferrals.size;
  }

  /**
   * What to do with a node whose flow ended in `outcome`; `holdMs` is the flow's own hold (after a
   * restart or a refusal), `retryAfterMs` a deferring policy's wish, `sinceBrokerBackMs` the time
   * since the broker connection last came back (Infinity: it never dropped).
   */
  plan(identity: string, outcome: string, holdMs: number, retryAfterMs?: number, sinceBrokerBackMs = Infinity): RetryPlan {
    if (outcome === "defer") {
      this.failures.delete(identity);
      const n = this.deferrals.get(identity) ?? 0;
      this.deferrals.set(identity, n + 1);
      return { holdMs: retryAfterMs ?? backoffMs(n, { baseMs: this.p.deferBaseMs, maxMs: this.p.deferMaxMs }), thenRetry: true };
    }
    if ((outcome === "error" || outcome === "gone") && holdMs === 0) {
      const f = this.failures.get(identity) ?? { n: 0, gone: 0 };
      if (outcome === "gone" && (f.gone >= this.p.goneTries || (f.n === 0 && sinceBrokerBackMs > this.p.settlingMs))) {
        this.failures.delete(identity);
        return { holdMs: 0, thenRetry: false };
      }
      this.failures.set(identity, { n: f.n + 1, gone: f.gone + (outcome === "gone" ? 1 : 0) });
      return { retryInMs: backoffMs(f.n, this.p) };
    }
    this.forget(identity);
    // an unanswered restart (an error with a hold) is checked after the hold
    return { holdMs, thenRetry: outcome === "error" && holdMs > 0 };
  }

  forget(identity: string): void {
    this.failures.delete(identity);
    this.deferrals.delete(identity);
  }
}
