/**
 * What the daemon knows about each node it has seen: its state, the step in flight, why it is
 * held and until when, its last error, the policy version and broker set of its last decision,
 * its certificate serial and a short timeline of steps. Fed by small hooks in the provisioner
 * (queued, started, step, record); read by the admin API (`nodes list`, `nodes show`).
 *
 * Memory is bounded: at most `maxNodes` entries (the oldest finished ones go first; nodes
 * awaiting an operator are never dropped) and at most TIMELINE_MAX timeline entries per node.
 * At 100k nodes every byte per node counts (bench/node-registry.bench.ts): the timeline is one
 * one-byte string (six characters an entry: the step code, then the time in ms), times are
 * whole seconds (small integers, not boxed numbers), and what many nodes share (the last
 * decision's policy, broker set, outcome, reason and fired rules with their whys) is one
 * interned object.
 *
 * States are open strings so other holds (conflict, retry with backoff, gone, arrived, lost)
 * plug in through `hold()` / `setState()` without changing this module.
 */
import picomatch from "picomatch";
import type { DecisionRecord } from "../types/index.js";

/** the states this module sets itself; others may add their own */
export const NODE_STATES = ["queued", "in_flight", "provisioned", "deferred", "failed", "refused", "held", "awaiting_approval", "denied", "shutdown", "upgrading", "gone"] as const;
export type NodeState = (typeof NODE_STATES)[number] | (string & {});

/** states an operator must act on, or that hold a node: kept when the registry is full */
const STICKY = new Set<string>(["awaiting_approval", "denied", "conflict"]);

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
const CODE_SPAN = 256;
const stepNames: string[] = [];
const stepIndex = new Map<string, number>();
function stepCode(step: string, result: StepResult): number {
  let i = stepIndex.get(step);
  // a code must stay below CODE_SPAN: past 63 names, further ones share the last
  if (i === undefined && stepNames.length >= CODE_SPAN / RESULTS.length - 1) i = stepIndex.get("other") ?? (stepIndex.set("other", stepNames.push("other") - 1), stepNames.length - 1);
  if (i === undefined) {
    i = stepNames.push(step) - 1;
    stepIndex.set(step, i);
  }
  return i * RESULTS.length + RESULTS.indexOf(result);
}

/**
 * Values many nodes share (a reason, a list of fired rules with the same whys) kept once.
 * Bounded: cleared when full, which only costs sharing, never correctness.
 */
class Interner<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly max = 20_000) {}
  get(key: string, value: T): T {
    const have = this.map.get(key);
    if (have !== undefined) return have;
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
    return value;
  }
}

/** one timeline entry: the code, then ms since the registry's epoch in five base-256 digits (2^40 ms ~ 34 years) */
const ENTRY = 6;
function entryText(ms: number, code: number): string {
  const m = Math.min(Math.max(0, Math.round(ms)), 2 ** 40 - 1);
  return String.fromCharCode(code, Math.floor(m / 2 ** 32) & 255, Math.floor(m / 2 ** 24) & 255, Math.floor(m / 2 ** 16) & 255, Math.floor(m / 2 ** 8) & 255, m & 255);
}
function entryMs(t: string, i: number): number {
  let m = 0;
  for (let k = 1; k < ENTRY; k++) m = m * 256 + t.charCodeAt(i + k);
  return m;
}

/**
 * The interning key of a decision summary: every field, each with its length before it, so no
 * text (a fact a node reports shows in a rule's why) can make two summaries' keys collide.
 * Half the cost of the JSON.stringify it replaces (1.7-2.1 against 3.4-3.7 us a node).
 */
function summaryKey(d: DecisionSummary): string {
  let k = `${field(d.policy)}${field(d.policyVersion)}${field(d.brokerSet)}${field(d.outcome)}${field(d.reason)}${d.fired.length};`;
  for (const f of d.fired) k += `${field(f.name)}${field(f.ruleSet)}${field(f.why)}${f.priority ?? ""};${field(f.source)}`;
  return k;
}
function field(s: string | undefined): string {
  return s === undefined ? "-;" : `${s.length}:${s}`;
}

/** what the last decision said; many nodes share one */
interface DecisionSummary {
  policy?: string;
  policyVersion?: string;
  brokerSet?: string;
  outcome: string;
  reason: string;
  fired: FiredSummary;
}

interface Trouble {
  holdReason?: string;
  /** whole seconds since the registry's epoch; 0: none */
  holdUntil: number;
  lastError?: string;
}


class NodeEntry {
  state: NodeState = "queued";
  /** whole seconds since the registry's epoch */
  since = 0;
  step: string | undefined = undefined;
  /** a hold and the last error: most nodes never have either, so they share one optional object */
  trouble: Trouble | undefined = undefined;
  decision: DecisionSummary | undefined = undefined;
  serial: string | undefined = undefined;
  /** ENTRY characters per entry, oldest first */
  timeline = "";
  constructor(readonly identity: string) {}

  mark(step: string, result: StepResult, msSinceEpoch: number): void {
    const t = this.timeline.length >= TIMELINE_MAX * ENTRY ? this.timeline.slice(ENTRY) : this.timeline;
    this.timeline = t + entryText(msSinceEpoch, stepCode(step, result));
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
  gone: "gone",
  conflict: "conflict",
};

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly epoch: number;
  private readonly decisions = new Interner<DecisionSummary>();

  constructor(
    private readonly maxNodes = 250_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.epoch = clock();
  }

  /** ms since the epoch */
  private now(): number {
    return this.clock() - this.epoch;
  }

  private secs(ms: number): number {
    return Math.floor(ms / 1000);
  }

  private iso(secs: number): string {
    return new Date(this.epoch + secs * 1000).toISOString();
  }

  get size(): number {
    return this.nodes.size;
  }

  private entry(identity: string): NodeEntry {
    let e = this.nodes.get(identity);
    if (!e) {
      if (this.nodes.size >= this.maxNodes) this.evict();
      e = new NodeEntry(identity);
      e.since = this.secs(this.now());
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
    e.since = this.secs(t);
    if (state !== "in_flight") e.step = undefined;
    e.mark(note ?? state, "info", t);
  }

  queued(identity: string): void {
    const s = this.nodes.get(identity)?.state;
    if (s === "queued" || s === "in_flight") return;
    this.setState(identity, "queued");
  }

  started(identity: string): void {
    const e = this.entry(identity);
    e.state = "in_flight";
    e.since = this.secs(this.now());
    this.setHold(e, undefined, 0);
  }

  private setHold(e: NodeEntry, reason: string | undefined, until: number): void {
    if (reason === undefined && !e.trouble) return;
    const t = (e.trouble ??= { holdUntil: 0 });
    t.holdReason = reason;
    t.holdUntil = until;
    if (reason === undefined && t.lastError === undefined) e.trouble = undefined;
  }

  /** a step of the flow started, succeeded or failed (flow-steps.ts' timed steps); the timeline keeps the ends */
  step(identity: string, step: string, result: StepResult): void {
    const e = this.nodes.get(identity);
    if (!e) return;
    if (result === "start") e.step = step;
    else e.mark(step, result, this.now());
  }

  /** the node's decision record: its state follows the outcome; holdMs from the flow's result */
  recorded(r: DecisionRecord, holdMs = 0): void {
    const e = this.entry(r.identity);
    const t = this.now();
    e.state = RECORD_STATE[r.outcome] ?? r.outcome;
    e.since = this.secs(t);
    e.step = undefined;
    // a record without a policy (an error before the decision) keeps the last decision's policy, broker set and rules
    const last = r.policy ? undefined : e.decision;
    const d: DecisionSummary = { policy: r.policy?.name ?? last?.policy, policyVersion: r.policy?.version ?? last?.policyVersion, brokerSet: r.policy ? r.brokerSet : last?.brokerSet, outcome: r.outcome, reason: r.reason, fired: r.policy ? r.fired : (last?.fired ?? r.fired) };
    e.decision = this.decisions.get(summaryKey(d), d);
    if (r.certificate?.serial) e.serial = r.certificate.serial;
    if (r.outcome === "error" || r.outcome === "refused") (e.trouble ??= { holdUntil: 0 }).lastError = r.error ?? r.reason;
    if (holdMs > 0 && (r.outcome === "refused" || r.outcome === "error")) this.setHold(e, e.decision.reason, this.secs(t + holdMs + 999));
    else this.setHold(e, undefined, 0);
    e.mark(`decision:${r.outcome}`, r.outcome === "error" ? "error" : "ok", t);
    // the run is over: one flat string instead of the chain of concatenations
    e.timeline = Buffer.from(e.timeline, "latin1").toString("latin1");
  }

  /** a hold another part imposes (conflict, CSR refusal, retry backoff, approval...): state, why, until when */
  hold(identity: string, state: NodeState, reason: string, untilMs = 0): void {
    this.setState(identity, state);
    const e = this.nodes.get(identity)!;
    this.setHold(e, reason, untilMs ? this.secs(untilMs - this.epoch + 999) : 0);
  }

  /** releases the hold bookkeeping; the state stays until the node moves on */
  unhold(identity: string, state: NodeState = "queued"): boolean {
    const e = this.nodes.get(identity);
    if (!e) return false;
    this.setHold(e, undefined, 0);
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
      if (f.policyVersion !== undefined && e.decision?.policyVersion !== f.policyVersion) continue;
      if (f.brokerSet !== undefined && e.decision?.brokerSet !== f.brokerSet) continue;
      if (re && !re(e.identity)) continue;
      yield this.view(e);
    }
  }

  show(identity: string): NodeDetail | undefined {
    const e = this.nodes.get(identity);
    if (!e) return undefined;
    const timeline: TimelineEntry[] = [];
    for (let i = 0; i < e.timeline.length; i += ENTRY) {
      const code = e.timeline.charCodeAt(i);
      timeline.push({ time: new Date(this.epoch + entryMs(e.timeline, i)).toISOString(), step: stepNames[Math.floor(code / RESULTS.length)]!, result: RESULTS[code % RESULTS.length]! });
    }
    return { ...this.view(e), fired: e.decision?.fired ?? [], timeline };
  }

  private view(e: NodeEntry): NodeView {
    const v: NodeView = { identity: e.identity, state: e.state, since: this.iso(e.since) };
    if (e.step) v.step = e.step;
    const t = e.trouble;
    if (t?.holdReason !== undefined) v.hold = t.holdUntil ? { reason: t.holdReason, until: this.iso(t.holdUntil) } : { reason: t.holdReason };
    if (t?.lastError !== undefined) v.lastError = t.lastError;
    const d = e.decision;
    if (d?.policy !== undefined) v.policy = d.policy;
    if (d?.policyVersion !== undefined) v.policyVersion = d.policyVersion;
    if (d?.brokerSet !== undefined) v.brokerSet = d.brokerSet;
    if (e.serial !== undefined) v.serial = e.serial;
    if (d) {
      v.outcome = d.outcome;
      v.reason = d.reason;
    }
    return v;
  }
}
