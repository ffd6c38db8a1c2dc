import type { Decider } from "./decider.js";
import type { DecisionRecord, PolicyRef } from "./decision.js";

/**
 * What became of a node the daemon restarted into its home: seen there (`arrived`), not seen by
 * the deadline (`lost`), seen after it had been reported lost (`arrived_late`, counted once), or
 * not seen while the home watch was disconnected for part of the wait (`unconfirmed`: its startup
 * event may have been sent while nobody listened, so it is not reported lost).
 */
export type ArrivalResult = "arrived" | "lost" | "arrived_late" | "unconfirmed";

/** The audit's follow-up record to a configure decision: one per verdict, same node and decision. */
export interface ArrivalRecord {
  kind: "arrival";
  identity: string;
  /** ISO-8601, when the verdict was reached */
  time: string;
  result: ArrivalResult;
  /** the decision this follows: its record's time, policy and broker set */
  decision: { time: string; policy?: PolicyRef; brokerSet?: string };
  /** the brokers the node was configured with */
  brokers: string[];
  /** ms from the accepted restart to the node's startup event at home (arrived, arrived_late) */
  afterMs?: number;
  /** the watched home broker that saw it */
  seenAt?: string;
}

/** One node's permission to be decided, from a DeciderGate; ended with the node's record. */
export interface DeciderLease {
  readonly decider: Decider;
  /** the node's flow ended with this record (undefined: it never ran, e.g. cancelled while waiting) */
  end(record?: DecisionRecord): void;
}

/**
 * Chooses the decider for each node and may make a node wait for one (a canary whose budget is
 * spent). Filled by arrival/ (guarded rollout); provision/ asks it once per node.
 */
export interface DeciderGate {
  /** resolves once a decider may decide the next node; undefined if `signal` aborts first */
  acquire(signal: AbortSignal): Promise<DeciderLease | undefined>;
}
