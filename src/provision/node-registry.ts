/**
 * What the daemon knows about each node it has seen: its state, the step in flight, why it is
 * held and until when, its last error, the policy version and broker set of its last decision,
 * its certificate serial and a short timeline of steps. Fed by small hooks in the provisioner
 * (queued, started, step, record); read by the admin API (`nodes list`, `nodes show`).
 *
 * Memory is bounded: at most `maxNodes` entries (the oldest finished ones go first; nodes
 * awaiting an operator are never dropped) and at most TIMELINE_MAX timeline entries per node,
 * packed two numbers each. bench/node-registry.bench.ts measures 100k nodes.
 *
 * States are open strings so other holds (conflict, retry with backoff, gone, arrived, lost)
 * plug in through `hold()` / `setState()` without changing this module.
 */
import picomatch from "picomatch";
import type { DecisionRecord } from "../types/index.js";

/** the states this module sets itself; others may add their own */
export const NODE_STATES = ["queued", "in_flight", "provisioned", "deferred", "failed", "refused", "held", "awaiting_approval", "denied", "shutdown", "upgrading"] as const;
export type NodeState = (typeof NODE_STATES)[number] | (string & {});

/** states an operator must act on, or that hold a node: kept when the registry is full */
const STICKY = new Set<string>(["awaiting_approval", "denied"]);

export const TIMELINE_MAX = 24;
const RESULTS = ["start", "ok", "error", "info"] as const;
export type StepResult = (typeof RESULTS)[number];

export interface TimelineEntry {
  time: string;
  step: string;
  result: StepResult;
}

/** the rules that fired for the last decision, as the decision record has them */
export type FiredSummary = DecisionRecord["fired"];

export interface NodeView {
  identity: string;
  state: NodeState;
  since: string;
  step?: string;
  hold?: { reason: string; until?: string };
  lastError?: string;
  policyVersion?: string;
  policy?: string;
  brokerSet?: string;
  serial?: string;
  outcome?: string;
  reason?: string;
}

export interface NodeDetail extends NodeView {
  fired: FiredSummary;
  timeline: TimelineEntry[];
}

export interface NodeFilter {
  state?: string;
  /** glob over the identity (picomatch, as the policy's glob operator) */
  identity?: string;
  policyVersion?: string;
  brokerSet?: string;
}

/** step names are few; a node's timeline stores their index */
const stepNames: string[] = [];
const stepIndex = new Map<string, number>();
function stepCode(step: string, result: StepResult): number {
  let i = stepIndex.get(step);
  if (i === undefined) {
    i = stepNames.push(step) - 1;
    stepIndex.set(step, i);
  }
  return i * RESULTS.length + RESULTS.indexOf(result);
}

class NodeEntry {
  state: NodeState = "queued";
  since = Date.now();
  step: string | undefined = undefined;
  holdReason: string | undefined = undefined;
  holdUntil = 0;
  lastError: string | undefined = undefined;
  policy: string | undefined = undefined;
  policyVersion: string | undefined = undefined;
  brokerSet: string | undefined = undefined;
  serial: string | undefined = undefined;
  outcome: string | undefined = undefined;
  reason: string | undefined = undefined;
  fired: FiredSummary | undefined = undefined;
  /** [time ms, code, time ms, code, ...], oldest first */
  timeline: number[] = [];
  constructor(readonly identity: string) {}

  mark(step: string, result: StepResult, at = Date.now()): void {
    if (this.timeline.length >= TIMELINE_MAX * 2) this.timeline.splice(0, 2);
    this.timeline.push(at, stepCode(step, result));
  }
}


const RECORD_STATE: Record<DecisionRecord["outcome"], NodeState> = {
  configure: "provisioned",
  defer: "deferred",
  error: "failed",
  refused: "refused",
  shutdown: "shutdown",
  upgrade: "upgrading",
  awaiting_approval: "awaiting_approval",
};

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeEntry>();

  constructor(
    private readonly maxNodes = 250_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.nodes.size;
  }

  private entry(identity: string): NodeEntry {
    let e = this.nodes.get(identity);
    if (!e) {
      if (this.nodes.size >= this.maxNodes) this.evict();
      e = new NodeEntry(identity);
      this.nodes.set(identity, e);
    }
    return e;
  }

  /** drops the oldest entry no operator is waiting on (Map order is insertion order) */
  private evict(): void {
    for (const [id, e] of this.nodes) {
      if (STICKY.has(e.state) || e.state === "in_flight") continue;
      this.nodes.delete(id);
      return;
    }
  }

  setState(identity: string, state: NodeState, note?: string): void {
    const e = this.entry(identity);
    const t = this.now();
    e.state = state;
    e.since = t;
    if (state !== "in_flight") e.step = undefined;
    e.mark(note ?? state, "info", t);
  }

  queued(identity: string): void {
    const e = this.entry(identity);
    if (e.state === "queued" || e.state === "in_flight") return;
    this.setState(identity, "queued");
  }

  started(identity: string): void {
    const e = this.entry(identity);
    e.state = "in_flight";
    e.since = this.now();
    e.holdReason = undefined;
    e.holdUntil = 0;
  }

  /** a step of the flow started, succeeded or failed (flow-steps.ts' timed steps) */
  step(identity: string, step: string, result: StepResult): void {
    const e = this.nodes.get(identity);
    if (!e) return;
    if (result === "start") e.step = step;
    e.mark(step, result, this.now());
  }

  /** the node's decision record: its state follows the outcome; holdMs from the flow's result */
  recorded(r: DecisionRecord, holdMs = 0): void {
    const e = this.entry(r.identity);
    const t = this.now();
    e.state = RECORD_STATE[r.outcome] ?? r.outcome;
    e.since = t;
    e.step = undefined;
    e.outcome = r.outcome;
    e.reason = r.reason;
    if (r.policy) {
      e.policy = r.policy.name;
      e.policyVersion = r.policy.version;
    }
    if (r.brokerSet !== undefined || r.policy) e.brokerSet = r.brokerSet;
    if (r.fired.length || r.policy) e.fired = r.fired;
    if (r.certificate?.serial) e.serial = r.certificate.serial;
    if (r.outcome === "error" || r.outcome === "refused") e.lastError = r.error ?? r.reason;
    if (holdMs > 0 && (r.outcome === "refused" || r.outcome === "error")) {
      e.holdReason = r.reason;
      e.holdUntil = t + holdMs;
    } else {
      e.holdReason = undefined;
      e.holdUntil = 0;
    }
    e.mark(`decision:${r.outcome}`, r.outcome === "error" ? "error" : "ok", t);
  }

  /** a hold another part imposes (conflict, CSR refusal, retry backoff, approval...): state, why, until when */
  hold(identity: string, state: NodeState, reason: string, untilMs = 0): void {
    this.setState(identity, state);
    const e = this.nodes.get(identity)!;
    e.holdReason = reason;
    e.holdUntil = untilMs;
  }

  /** releases the hold bookkeeping; the state stays until the node moves on */
  unhold(identity: string, state: NodeState = "queued"): boolean {
    const e = this.nodes.get(identity);
    if (!e) return false;
    e.holdReason = undefined;
    e.holdUntil = 0;
    this.setState(identity, state, `${state} by operator`);
    return true;
  }

  forget(identity: string): boolean {
    return this.nodes.delete(identity);
  }

  has(identity: string): boolean {
    return this.nodes.has(identity);
  }

  state(identity: string): NodeState | undefined {
    return this.nodes.get(identity)?.state;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.nodes.values()) out[e.state] = (out[e.state] ?? 0) + 1;
    return out;
  }

  *list(f: NodeFilter = {}): Generator<NodeView> {
    // identities are dotted FQDNs: dot:true, so * matches across the whole name's characters
    const re = f.identity !== undefined ? picomatch(f.identity, { dot: true, contains: false }) : undefined;
    for (const e of this.nodes.values()) {
      if (f.state !== undefined && e.state !== f.state) continue;
      if (f.policyVersion !== undefined && e.policyVersion !== f.policyVersion) continue;
      if (f.brokerSet !== undefined && e.brokerSet !== f.brokerSet) continue;
      if (re && !re(e.identity)) continue;
      yield this.view(e);
    }
  }

  show(identity: string): NodeDetail | undefined {
    const e = this.nodes.get(identity);
    if (!e) return undefined;
    const timeline: TimelineEntry[] = [];
    for (let i = 0; i < e.timeline.length; i += 2) {
      const code = e.timeline[i + 1]!;
      timeline.push({ time: new Date(e.timeline[i]!).toISOString(), step: stepNames[Math.floor(code / RESULTS.length)]!, result: RESULTS[code % RESULTS.length]! });
    }
    return { ...this.view(e), fired: e.fired ?? [], timeline };
  }

  private view(e: NodeEntry): NodeView {
    const v: NodeView = { identity: e.identity, state: e.state, since: new Date(e.since).toISOString() };
    if (e.step) v.step = e.step;
    if (e.holdReason !== undefined) v.hold = e.holdUntil ? { reason: e.holdReason, until: new Date(e.holdUntil).toISOString() } : { reason: e.holdReason };
    if (e.lastError !== undefined) v.lastError = e.lastError;
    if (e.policy !== undefined) v.policy = e.policy;
    if (e.policyVersion !== undefined) v.policyVersion = e.policyVersion;
    if (e.brokerSet !== undefined) v.brokerSet = e.brokerSet;
    if (e.serial !== undefined) v.serial = e.serial;
    if (e.outcome !== undefined) v.outcome = e.outcome;
    if (e.reason !== undefined) v.reason = e.reason;
    return v;
  }
}
