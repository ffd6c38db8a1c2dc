/**
 * Guarded rollout of policy versions, pure: a newly loaded version decides at most `canary`
 * restarted nodes until `minArrivals` of them arrived; if their lost share passes `maxLost` it is
 * stopped, and the previous trusted version takes over (`revert`) or nothing decides (`pause`).
 *
 * The canary counts restarted nodes only: a node the candidate deferred or shut down, or whose
 * flow failed before its restart, returns its slot. It is promoted as soon as its verdict cannot
 * change: enough arrivals, and even if every node still pending were lost the share would stay
 * within `maxLost`. It fails as soon as the lost share of its restarted nodes passes `maxLost`.
 */
import type { RolloutSettings } from "../config/index.js";
import type { ArrivalResult, Decider, PolicyRef } from "../types/index.js";

/** the rollout.* settings it runs on (config/) */
export type RolloutOptions = Pick<RolloutSettings, "enabled" | "canary" | "minArrivals" | "maxLost" | "onFailure" | "trustInitial">;

/** trusted: the version in force is trusted; canary: a candidate is on trial; reverted/paused: it failed */
export type RolloutStateName = "trusted" | "canary" | "reverted" | "paused";

interface Trial {
  decider: Decider;
  /** canary nodes being decided or configured now */
  inFlight: number;
  restarted: number;
  arrived: number;
  lost: number;
  unconfirmed: number;
  lostIds: string[];
  brokerSets: Set<string>;
  /** broker sets of its lost nodes */
  lostIn: Set<string>;
  since: number;
  /** no trusted version to revert to was loaded when the trial began */
  noFallback: boolean;
}

export interface RolloutFailure {
  ref: PolicyRef;
  decider: Decider;
  lost: string[];
  /** every broker set its canary nodes went to */
  brokerSets: string[];
  /** the broker sets its lost nodes went to: where to look */
  lostIn: string[];
  restarted: number;
  at: number;
}

export type RolloutChange =
  | { kind: "trusted"; ref: PolicyRef; why: string }
  | { kind: "canary"; ref: PolicyRef; previous?: PolicyRef }
  | { kind: "failed"; failure: RolloutFailure; state: "reverted" | "paused"; inForce?: PolicyRef }
  | { kind: "unchanged"; ref: PolicyRef; why: string };

export interface RolloutStatus {
  state: RolloutStateName;
  /** the version deciding nodes now (none while paused) */
  inForce?: PolicyRef;
  trusted?: PolicyRef;
  canary?: { ref: PolicyRef; budget: number; inFlight: number; restarted: number; arrived: number; lost: number; unconfirmed: number; minArrivals: number; maxLost: number; since: string };
  failed?: { ref: PolicyRef; lost: string[]; brokerSets: string[]; lostIn: string[]; restarted: number; at: string };
}

export class Rollout {
  private trusted?: Decider;
  private trial?: Trial;
  private failure?: RolloutFailure;
  private state: RolloutStateName = "trusted";

  /** `history`: the version last trusted by an earlier run, if remembered (rollout.state_file) */
  constructor(
    private readonly o: RolloutOptions,
    private readonly history?: PolicyRef,
  ) {}

  get name(): RolloutStateName {
    return this.state;
  }

  /** A policy version was (re)loaded successfully. */
  load(d: Decider, now: number): RolloutChange {
    const ref = d.ref;
    if (!this.o.enabled) return this.trust(d, "rollout is off");
    if (this.trusted?.ref.hash === ref.hash) {
      this.trial = undefined;
      return this.trust(d, this.state === "trusted" ? "the trusted version" : "back to the trusted version");
    }
    if (this.trial?.decider.ref.hash === ref.hash) return { kind: "unchanged", ref, why: "already on trial" };
    if (this.failure?.decider.ref.hash === ref.hash) return { kind: "unchanged", ref, why: "this version failed its canary; load another version or accept it through the admin API" };
    if (!this.trusted && !this.trial && !this.failure) {
      if (this.history?.hash === ref.hash) return this.trust(d, "trusted by an earlier run");
      if (!this.history && this.o.trustInitial) return this.trust(d, "the first version, trusted by rollout.trust_initial");
    }
    this.failure = undefined;
    this.trial = { decider: d, inFlight: 0, restarted: 0, arrived: 0, lost: 0, unconfirmed: 0, lostIds: [], brokerSets: new Set(), lostIn: new Set(), since: now, noFallback: !this.trusted };
    this.state = "canary";
    return { kind: "canary", ref, previous: this.trusted?.ref };
  }

  private trust(d: Decider, why: string): RolloutChange {
    this.trusted = d;
    this.trial = undefined;
    this.failure = undefined;
    this.state = "trusted";
    return { kind: "trusted", ref: d.ref, why };
  }

  /** The decider for the next node, or undefined: it must wait (canary budget spent, or paused). */
  admit(): { decider: Decider; trial: boolean } | undefined {
    switch (this.state) {
      case "trusted":
      case "reverted":
        return this.trusted ? { decider: this.trusted, trial: false } : undefined;
      case "paused":
        return undefined;
      case "canary": {
        const t = this.trial!;
        if (t.inFlight + t.restarted >= this.o.canary) return undefined;
        t.inFlight++;
        return { decider: t.decider, trial: true };
      }
    }
  }

  /** A node admitted with `admit()` finished its flow; `restarted`: it is now awaited at home. */
  ended(hash: string | undefined, trial: boolean, restarted: boolean, brokerSet?: string): void {
    const t = this.trial;
    if (!trial || !t || t.decider.ref.hash !== hash) return;
    t.inFlight--;
    if (restarted) {
      t.restarted++;
      if (brokerSet) t.brokerSets.add(brokerSet);
    }
  }

  /** admit() said trial, but the node never reached the flow (cancelled while waiting) */
  released(hash: string): void {
    if (this.trial?.decider.ref.hash === hash) this.trial.inFlight--;
  }

  /** An arrival verdict for a node decided by the version with `hash`. */
  result(hash: string | undefined, result: ArrivalResult, identity: string, now: number, brokerSet?: string): RolloutChange | undefined {
    const t = this.trial;
    if (!t || t.decider.ref.hash !== hash) return undefined;
    if (result === "arrived") t.arrived++;
    else if (result === "arrived_late") {
      t.arrived++;
      t.lost--;
      t.lostIds = t.lostIds.filter((x) => x !== identity);
    } else if (result === "lost") {
      t.lost++;
      t.lostIds.push(identity);
      if (brokerSet) t.lostIn.add(brokerSet);
    } else t.unconfirmed++;
    const n = Math.max(1, t.restarted);
    if (t.lost / n > this.o.maxLost) return this.fail(t, now);
    const pending = Math.max(0, t.restarted - t.arrived - t.lost - t.unconfirmed);
    if (t.arrived >= this.o.minArrivals && (t.lost + pending) / n <= this.o.maxLost) return this.trust(t.decider, `${t.arrived} of ${t.restarted} canary nodes arrived`);
    return undefined;
  }

  private fail(t: Trial, now: number): RolloutChange {
    this.failure = { ref: t.decider.ref, decider: t.decider, lost: [...t.lostIds], brokerSets: [...t.brokerSets].sort(), lostIn: [...t.lostIn].sort(), restarted: t.restarted, at: now };
    this.trial = undefined;
    this.state = this.o.onFailure === "revert" && this.trusted && !t.noFallback ? "reverted" : "paused";
    return { kind: "failed", failure: this.failure, state: this.state, inForce: this.state === "reverted" ? this.trusted?.ref : undefined };
  }

  /** Operator: trust the failed (or on-trial) version after all. */
  accept(): RolloutChange | undefined {
    const d = this.failure?.decider ?? this.trial?.decider;
    return d ? this.trust(d, "accepted by an operator") : undefined;
  }

  /** Operator: abandon the version on trial (or leave a pause) for the trusted version. */
  revert(now: number): RolloutChange | undefined {
    if (!this.trusted) return undefined;
    if (this.trial) return this.fail({ ...this.trial, noFallback: false }, now);
    if (this.state === "paused") {
      this.state = "reverted";
      return { kind: "failed", failure: this.failure!, state: "reverted", inForce: this.trusted.ref };
    }
    return undefined;
  }

  status(): RolloutStatus {
    const t = this.trial;
    const f = this.failure;
    return {
      state: this.state,
      inForce: this.state === "canary" ? t?.decider.ref : this.state === "paused" ? undefined : this.trusted?.ref,
      trusted: this.trusted?.ref,
      canary: t && { ref: t.decider.ref, budget: this.o.canary, inFlight: t.inFlight, restarted: t.restarted, arrived: t.arrived, lost: t.lost, unconfirmed: t.unconfirmed, minArrivals: this.o.minArrivals, maxLost: this.o.maxLost, since: new Date(t.since).toISOString() },
      failed: f && { ref: f.ref, lost: f.lost.slice(0, 100), brokerSets: f.brokerSets, lostIn: f.lostIn, restarted: f.restarted, at: new Date(f.at).toISOString() },
    };
  }
}
