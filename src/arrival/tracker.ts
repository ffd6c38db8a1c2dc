/**
 * Arrival bookkeeping, pure: which restarted nodes we wait for, which arrived, which are lost.
 * Time is passed in, so tests drive it; the loop (loop.ts) feeds it startup events from the
 * home watches and calls expire() on a timer.
 *
 * A node is `arrived` when its startup event (component `server`) is seen at a home that covers
 * it after its decision began; `lost` when the deadline passes first; a lost node seen later is
 * `arrived_late` (once). Missing a node is only `lost` if we were listening for it all along:
 * a home that (re)connected during the wait may have missed the event, so the node is
 * `unconfirmed` instead, never falsely lost.
 */
import type { ArrivalResult, PolicyRef } from "../types/index.js";

export interface Expectation {
  identity: string;
  /** ms: the decision's flow began; a startup event at home from then on counts */
  decidedAt: number;
  /** ms: the restart was accepted (or its reply was lost); time to arrival counts from here */
  restartedAt: number;
  /** ISO time of the decision record, for the follow-up record */
  decisionTime: string;
  /**
   * false when the restart's reply never came: the node most likely restarted, but if it is not
   * seen it is not reported lost (it is found in provisioning mode again if it did not)
   */
  confirmed: boolean;
  policy?: PolicyRef;
  brokerSet?: string;
  brokers: string[];
  /** the home watches that cover its brokers */
  homes: string[];
}

export interface Verdict {
  result: ArrivalResult;
  expectation: Expectation;
  /** ms */
  at: number;
  afterMs?: number;
  seenAt?: string;
}

export interface TrackerOptions {
  deadlineMs: number;
  /** lost nodes remembered for arrived_late and /status */
  maxLost?: number;
  /** startup events seen before the node was expected (the restart reply and the event race) */
  maxEarly?: number;
}

interface HomeState {
  connected: boolean;
  /** ms of the latest (re)connect: before it, this home may have missed events */
  listeningSince: number;
}

export class ArrivalTracker {
  private readonly pending = new Map<string, { e: Expectation; deadline: number }>();
  private readonly missed = new Map<string, { e: Expectation; result: ArrivalResult; at: number }>();
  private readonly early = new Map<string, { at: number; home: string }>();
  private readonly homes = new Map<string, HomeState>();
  private readonly maxLost: number;
  private readonly maxEarly: number;

  constructor(private readonly o: TrackerOptions) {
    this.maxLost = o.maxLost ?? 10_000;
    this.maxEarly = o.maxEarly ?? 100_000;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** lost nodes not seen since, oldest first */
  lost(): Array<{ identity: string; at: number; e: Expectation }> {
    return [...this.missed.values()].filter((m) => m.result === "lost").map((m) => ({ identity: m.e.identity, at: m.at, e: m.e }));
  }

  /** lost nodes not seen since */
  lostCount = 0;

  private unmiss(identity: string): { e: Expectation; result: ArrivalResult; at: number } | undefined {
    const m = this.missed.get(identity);
    if (m) {
      this.missed.delete(identity);
      if (m.result === "lost") this.lostCount--;
    }
    return m;
  }

  /** Waits for a node; returns its verdict at once if its startup event came first. */
  expect(e: Expectation, now: number): Verdict | undefined {
    this.unmiss(e.identity);
    const seen = this.early.get(e.identity);
    if (seen && seen.at >= e.decidedAt) {
      this.early.delete(e.identity);
      return { result: "arrived", expectation: e, at: now, afterMs: Math.max(0, seen.at - e.restartedAt), seenAt: seen.home };
    }
    // re-insert: pending stays in deadline order, which expire() relies on
    this.pending.delete(e.identity);
    this.pending.set(e.identity, { e, deadline: e.restartedAt + this.o.deadlineMs });
    return undefined;
  }

  /** A startup event (component server) for `identity` at `home`. */
  seen(identity: string, home: string, now: number): Verdict | undefined {
    const p = this.pending.get(identity);
    if (p) {
      this.pending.delete(identity);
      return { result: "arrived", expectation: p.e, at: now, afterMs: Math.max(0, now - p.e.restartedAt), seenAt: home };
    }
    const m = this.unmiss(identity);
    if (m) {
      return { result: "arrived_late", expectation: m.e, at: now, afterMs: Math.max(0, now - m.e.restartedAt), seenAt: home };
    }
    // a node we did not restart, or one whose restart we have not recorded yet
    this.early.delete(identity);
    this.early.set(identity, { at: now, home });
    if (this.early.size > this.maxEarly) this.early.delete(this.early.keys().next().value!);
    return undefined;
  }

  /** Verdicts for every node whose deadline has passed. */
  expire(now: number): Verdict[] {
    const out: Verdict[] = [];
    for (const [id, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(id);
      if (!p.e.confirmed) continue;
      const result: ArrivalResult = this.mayHaveMissed(p.e) ? "unconfirmed" : "lost";
      this.missed.set(id, { e: p.e, result, at: now });
      if (result === "lost") this.lostCount++;
      if (this.missed.size > this.maxLost) this.unmiss(this.missed.keys().next().value!);
      out.push({ result, expectation: p.e, at: now });
    }
    for (const [id, s] of this.early) {
      if (s.at + this.o.deadlineMs > now) break;
      this.early.delete(id);
    }
    return out;
  }

  /** a home that is listening now began after the node's wait began: its event may have gone by unheard */
  private mayHaveMissed(e: Expectation): boolean {
    return e.homes.some((h) => {
      const s = this.homes.get(h);
      return s !== undefined && s.connected && s.listeningSince > e.decidedAt;
    });
  }

  homeConnected(home: string, now: number): void {
    this.homes.set(home, { connected: true, listeningSince: now });
  }

  homeDisconnected(home: string): void {
    const s = this.homes.get(home);
    if (s) s.connected = false;
  }

  /** forget a lost node (it is being provisioned again, or an operator said so) */
  forget(identity: string): void {
    this.unmiss(identity);
    this.pending.delete(identity);
  }
}
