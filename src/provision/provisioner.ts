/**
 * The provisioner: intake -> queue -> async workers running the per-node flow -> audit.
 * The only orchestrator; it owns no protocol, policy or CA logic itself.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Metrics } from "../metrics/metrics.js";
import type { BrokerConnection } from "../transport/index.js";
import type { ConfiguringRecord, Decision, DecisionRecord } from "../types/index.js";
import { ReplyWatch, type ReplyConflict } from "../transport/index.js";
import type { AuditSink } from "./audit.js";
import { ConflictRegistry, type HeldConflict } from "./conflicts.js";
import { WarnThrottle } from "./warn-throttle.js";
import { provisionNode, type FlowObserver, type FlowOptions } from "./flow.js";
import { Intake, type Discoverer, type IntakeOptions } from "./intake.js";
import type { CsrChecker, DeciderGate, DeciderLease, Signer } from "../types/index.js";
import type { RpcCaller } from "./interfaces.js";
import type { PolicyManager } from "./policy-manager.js";
import { WorkQueue, type IntakeSource } from "./queue.js";
import { approvalDecision, MemoryApprovalStore, type ApprovalEntry, type ApprovalStore } from "./approvals.js";
import { NodeRegistry } from "./node-registry.js";
import { OperatorActions, type ActionRequest, type ActionResult } from "./operator.js";
import { Slots, slotAfterFirstReply } from "./slots.js";
import { RetryBook, type RetryPolicy } from "./retry.js";
import { DEFAULT_BREAKER, SignerBreaker } from "./signer-breaker.js";
import { PROVISION_ACTIONS_RESTARTING } from "../protocol/agents.js";
import type { InventoryRecorder } from "./recorder.js";

/** the first discovery after the broker connection comes back: most of the fleet has reconnected and subscribed again */
const REDISCOVER_AFTER_RECONNECT_MS = 3000;
const RESTARTING_STEPS: ReadonlySet<string> = new Set(PROVISION_ACTIONS_RESTARTING);

/**
 * Nodes in first contact per worker: a node takes a worker slot only once it has answered.
 * One: an absent server costs a worker one no-responders round trip (one try since phantoms are
 * no longer retried), and 2,000 phantoms before a 500-node fleet slowed it by 1.12-1.18x with one
 * contact against 1.17-1.23x with four (bench/phantoms.bench.ts, alternating). Four contacts kept
 * up to 800 nodes holding their inventories while they waited for a worker: at 10,000 nodes that
 * cost 11% more peak RSS and quadrupled the per-node p50 (1,060 against 252 ms) for the same
 * throughput and CPU within noise (three alternating pairs).
 */
export const CONTACTS_PER_WORKER = 1;

export interface ProvisionerOptions {
  site: string;
  identity: string;
  workers: number;
  queue: { maxSize: number; maxWaitMs: number };
  flow: FlowOptions;
  intake: IntakeOptions;
  /** retry and defer backoff; default DEFAULT_RETRY */
  retry?: RetryPolicy;
  /** the signer's circuit breaker; default DEFAULT_BREAKER */
  breaker?: { threshold: number; probeBaseMs: number; probeMaxMs: number };
}

export interface ProvisionerDeps {
  nc: BrokerConnection;
  rpc: RpcCaller & Discoverer;
  policies: PolicyManager;
  signer?: Signer;
  csr: CsrChecker;
  metrics: Metrics;
  log: Logger;
  audit: AuditSink;
  onInventory?: InventoryRecorder;
  /**
   * Active-active HA (ha/claims.ts): a worker provisions a node only after claim() says this
   * instance holds it, and calls release() with the record's outcome when the node is done.
   */
  claims?: { claim(identity: string): Promise<boolean>; release(identity: string, outcome: string): Promise<void> };
  /** where nodes awaiting approval live: JetStream KV under HA (shared), memory otherwise */
  approvals?: ApprovalStore;
  /** the node registry's bound (default 250k) */
  maxKnownNodes?: number;
  /** repeated warnings as periodic summaries; default one of the provisioner's own, stopped with it */
  warns?: WarnThrottle;
  /**
   * Guarded rollout (arrival/): chooses each node's decider and may keep it waiting; told how the
   * node's flow ended. Without it the policy version in force decides every node at once.
   */
  gate?: DeciderGate;
}

export interface ProvisionerStatus {
  identity: string;
  site: string;
  role: string;
  paused: boolean;
  ready: boolean;
  connected: boolean;
  policy?: { name: string; version: string; hash: string };
  lastReload?: unknown;
  lastReloadError?: unknown;
  queue: { queued: number; busy: number; held: number; dropped: number; retrying: number };
  /** with PKI: whether the signer answers (its circuit breaker is closed) */
  signer?: { kind: string; up: boolean };
  busyWorkers: number;
  workers: number;
  /** nodes per outcome of their latest decision record since start: each node counts once */
  counts: Record<string, number>;
  /** decision records per outcome since start: a node deferred three times counts three */
  records: Record<string, number>;
  /** nodes held because more than one server answered as them; cleared by POST /nodes/<identity>/clear */
  conflicts: { held: number; nodes: HeldConflict[] };
  startedAt: string;
}

/**
 * A valid reply besides one that failed the checks: recorded as a conflict, but the node is only
 * held this long, so a forged reply cannot keep a genuine node out for minutes.
 */
export const INVALID_CONFLICT_HOLD_MS = 10_000;

export declare interface Provisioner {
  on(event: "record", listener: (r: DecisionRecord) => void): this;
  /** a node entered the queue, from which intake */
  on(event: "queued", listener: (identity: string, source: IntakeSource) => void): this;
  /** the signer's circuit breaker opened (false) or closed (true) */
  on(event: "signer", listener: (up: boolean) => void): this;
}

export class Provisioner extends EventEmitter {
  readonly queue: WorkQueue;
  private readonly intake: Intake;
  private paused = false;
  private busy = 0;
  private readonly slots: Slots;
  private readonly retries: RetryBook;
  private readonly breaker?: SignerBreaker;
  private workers: Promise<void>[] = [];
  private readonly inflight = new Map<string, AbortController>();
  /** nodes in flight that announced a new process: started again as soon as their flow stops */
  private readonly restarted = new Set<string>();
  /** nodes in flight that were sent restart, release_update or shutdown: a startup event from them is no surprise */
  private readonly toldToRestart = new Set<string>();
  /** the reply watch of each node in flight, for conflicts that discovery sees */
  private readonly watches = new Map<string, ReplyWatch>();
  readonly conflicts = new ConflictRegistry();
  private readonly warns: WarnThrottle;
  /** info lines for nodes nothing answers for, summarised like warnings */
  private readonly goneLines: WarnThrottle;
  private readonly counts: Record<string, number> = {};
  private readonly recordCounts: Record<string, number> = {};
  /** each node's latest outcome, so counts move a node rather than add it again */
  private readonly latestOutcome = new Map<string, string>();
  private readonly startedAt = new Date().toISOString();
  /** set by HA: false while this instance is a standby */
  private active = true;
  role = "standalone";
  private stopping = false;
  /** every node this instance knows and its state (nodes list / show) */
  readonly nodes: NodeRegistry;
  readonly approvals: ApprovalStore;
  private readonly operator: OperatorActions;
  /** aborted by stop(): nodes still waiting at the gate give up at once instead of being drained */
  private readonly stopAc = new AbortController();

  constructor(
    private readonly o: ProvisionerOptions,
    private readonly d: ProvisionerDeps,
  ) {
    super();
    this.slots = new Slots(o.workers);
    this.retries = new RetryBook(o.retry);
    const signer = d.signer;
    if (signer) {
      d.metrics.signerUp.labels(o.site).set(1);
      this.breaker = new SignerBreaker({
        ...DEFAULT_BREAKER,
        ...o.breaker,
        probe: signer.probe ? () => signer.probe!() : undefined,
        onDown: (e) => {
          d.metrics.signerUp.labels(o.site).set(0);
          this.emit("signer", false);
          d.log.warn({ signer: signer.kind, err: e.message }, "signer down: nodes wait before gencsr and signing until it answers");
        },
        onUp: (ms) => {
          d.metrics.signerUp.labels(o.site).set(1);
          this.emit("signer", true);
          d.log.info({ signer: signer.kind, downMs: Math.round(ms) }, "signer back: resuming");
        },
      });
    }
    this.warns = d.warns ?? new WarnThrottle(d.log);
    this.goneLines = new WarnThrottle(d.log, this.warns.windowMs, "info");
    this.queue = new WorkQueue({ ...o.queue, onStale: () => d.metrics.queueRejected.labels(o.site, "stale").inc() });
    // read at each scrape: setting three gauges on every queue and worker change cost more than all the rest of the metrics
    d.metrics.work = () => ({ queued: this.queue.size, waiting: this.queue.waiting, busy: this.busy });
    this.intake = new Intake(d.nc, d.rpc, {
      offer: (id, src, startup) => this.offer(id, src, startup),
      active: () => !this.paused && this.active && this.d.policies.loaded,
      invalid: (source, reason, detail) => {
        d.metrics.intakeErrors.labels(o.site, source, reason).inc();
        this.warns.warn(`intake/${source}/${reason}`, { source, reason }, detail);
      },
      discoveryCycle: (n) => {
        d.metrics.discoverCycles.labels(o.site).inc();
        d.log.debug({ found: n }, "discovery cycle");
      },
      discoveryError: (e) => {
        d.metrics.discoveryErrors.labels(o.site).inc();
        d.log.error({ err: e.message }, "discovery failed");
      },
      duplicate: (id) => this.duplicateReply(id, "discovery#ping", "two discovery replies from this identity"),
    }, o.intake);
    this.nodes = new NodeRegistry(d.maxKnownNodes);
    this.approvals = d.approvals ?? new MemoryApprovalStore();
    this.approvals.onChange((id, e) => this.approvalChanged(id, e));
    for (const e of this.approvals.all()) this.approvalChanged(e.identity, e);
    this.operator = new OperatorActions({
      nodes: this.nodes,
      approvals: this.approvals,
      decider: () => this.d.policies.current(),
      releaseHold: (id) => {
        this.queue.release(id);
        this.clearConflict(id);
      },
      offer: (id, src) => this.offer(id, src),
      audit: (a) => {
        try {
          this.d.audit.action(a);
        } catch (e) {
          d.metrics.auditErrors.labels(o.site).inc();
        }
        d.log.warn({ action: a.action, identity: a.identity, operator: a.operator, from: a.from, result: a.result }, `operator ${a.action}: ${a.message}`);
      },
      counted: (action, result) => d.metrics.operatorActions.labels(o.site, action, result).inc(),
    });
  }

  /** the approval store changed (here or on another instance): mirror it; a granted node is provisioned by the active instance */
  private approvalChanged(identity: string, e: ApprovalEntry | undefined): void {
    if (!e) {
      const s = this.nodes.state(identity);
      if (s === "awaiting_approval" || s === "denied") this.nodes.unhold(identity, "released");
      return;
    }
    if (e.status === "waiting") this.nodes.hold(identity, "awaiting_approval", e.reason);
    else if (e.status === "denied") this.nodes.hold(identity, "denied", `denied by ${e.denial?.by}: ${e.denial?.reason ?? ""}`);
    else if (e.status === "granted" && this.active && !this.stopping) this.offer(identity, "manual");
  }

  /** approve, deny, retry, clear, forget (the admin API's token-guarded routes) */
  act(req: ActionRequest): Promise<ActionResult[]> {
    return this.operator.run(req);
  }

  /**
   * Offers a node for provisioning; returns what the queue did with it. `startup`: the node
   * announced a new process, so a flow in progress for it talks to one that is gone (its lock,
   * ECDH key and state with it): that flow is abandoned and the node starts again at once.
   */
  offer(identity: string, source: IntakeSource, startup = false): string {
    const m = this.d.metrics;
    const site = this.o.site;
    if (!this.active) return "standby";
    // waiting for an operator, or denied by one: only approve or clear lets the node on
    const waiting = this.approvals.get(identity);
    if (waiting && waiting.status !== "granted") {
      m.queueRejected.labels(site, "approval").inc();
      return "held";
    }
    if (this.conflicts.isHeld(identity)) {
      m.queueRejected.labels(site, "conflict").inc();
      return "conflict";
    }
    const inflight = startup ? this.inflight.get(identity) : undefined;
    if (inflight && !this.restarted.has(identity) && !this.toldToRestart.has(identity)) {
      this.restarted.add(identity);
      this.d.log.info({ identity }, "node restarted mid-flow: abandoning its flow and starting it again");
      inflight.abort();
      return "restarted";
    }
    const r = this.queue.add(identity, source);
    if (r === "queued") {
      if (source === "event") m.eventDiscovered.labels(site).inc();
      else if (source === "discovery") m.discovered.labels(site).inc();
      else if (source === "registration") m.registrationDiscovered.labels(site).inc();
      this.nodes.queued(identity);
      this.emit("queued", identity, source);
    } else if (r !== "duplicate") {
      m.queueRejected.labels(site, r).inc();
    }
    return r;
  }

  private writeRecord(r: DecisionRecord): void {
    try {
      this.d.audit.write(r);
    } catch (e) {
      this.auditFailed(e as Error);
    }
  }

  /** the audit's line for a configure request: the flow sends it once this resolves; it never fails the node */
  private readonly configuring = async (r: ConfiguringRecord): Promise<void> => {
    try {
      await this.d.audit.configuring(r);
    } catch (e) {
      this.auditFailed(e as Error);
    }
  };

  private auditFailed(e: Error): void {
    this.d.metrics.auditErrors.labels(this.o.site).inc();
    this.d.log.error({ err: e.message }, "could not write decision record");
  }


  private heldTimer?: NodeJS.Timeout;

  start(): void {
    this.intake.start();
    let tick = 0;
    this.heldTimer = setInterval(() => {
      if (this.active) {
        this.queue.releaseHeld();
        this.queue.releaseRetries();
      }
      if (tick++ % 20 === 0) this.stateGauges();
    }, 250);
    for (let i = 0; i < this.o.workers * CONTACTS_PER_WORKER; i++) this.workers.push(this.worker());
  }

  private stateGauges(): void {
    const g = this.d.metrics.nodeStates;
    g.reset();
    for (const [state, n] of Object.entries(this.nodes.counts())) g.labels(this.o.site, state).set(n);
  }

  private observer(): FlowObserver {
    const m = this.d.metrics;
    const site = this.o.site;
    // children made once per label value: prom-client's labels() hashes and allocates on each call
    const rpcTimes = new Map<string, { observe(s: number): void }>();
    const rpcTime = (rpc: string) => {
      let c = rpcTimes.get(rpc);
      if (!c) {
        const sum = m.rpcTime.labels(site, rpc);
        const hist = m.rpcSeconds.labels(site, rpc);
        c = { observe: (s) => (sum.observe(s), hist.observe(s)) };
        rpcTimes.set(rpc, c);
      }
      return c;
    };
    const evalTime = m.policyEvalTime.labels(site);
    return {
      rpcTime: (rpc, s) => rpcTime(rpc).observe(s),
      rpcError: (rpc) => m.rpcErrors.labels(site, rpc).inc(),
      policyEvaluated: (dec: Decision, s) => {
        m.policyEvaluations.labels(site, dec.policy.name, dec.policy.version).inc();
        m.policyDecisions.labels(site, dec.outcome, dec.policy.name, dec.policy.version).inc();
        evalTime.observe(s);
      },
      csrRefused: (code) => m.csrRefusals.labels(site, code).inc(),
      jwtRefused: (reason) => m.jwtRefusals.labels(site, reason).inc(),
      signed: (signer, s) => m.signTime.labels(site, signer).observe(s),
      signFailed: (signer) => m.signErrors.labels(site, signer).inc(),
      lockHeld: () => m.lockContention.labels(site).inc(),
    };
  }

  private async worker(): Promise<void> {
    const obs = this.observer();
    for (;;) {
      if (this.stopping) return;
      const item = await this.queue.take();
      if (!item) return;
      if (!this.d.policies.loaded || this.conflicts.isHeld(item.identity)) {
        this.queue.done(item.identity);
        continue;
      }
      // another instance holds the node: drop it; discovery finds it again if that instance dies
      if (this.d.claims && !(await this.d.claims.claim(item.identity))) {
        this.queue.done(item.identity);
        continue;
      }
      const ac = new AbortController();
      // guarded rollout: the node waits here, in the queue's count and undecided, while a canary's budget is spent
      let lease: DeciderLease | undefined;
      if (this.d.gate) {
        this.inflight.set(item.identity, ac);
        const waitFrom = Date.now();
        lease = await this.d.gate.acquire(AbortSignal.any([ac.signal, this.stopAc.signal]));
        if (!lease) {
          this.inflight.delete(item.identity);
          this.queue.done(item.identity);
          await this.d.claims?.release(item.identity, "error").catch(() => undefined);
          continue;
        }
        item.waitedMs += Date.now() - waitFrom;
      }
      let outcome = "error";
      let record: DecisionRecord | undefined;
      this.nodes.started(item.identity);
      let again = false;
      const watch = new ReplyWatch(item.identity);
      this.inflight.set(item.identity, ac);
      this.watches.set(item.identity, watch);
      const rpc = slotAfterFirstReply(this.d.rpc, this.slots, () => this.busy++);
      try {
        // the decider is taken once per node: a reload mid-flow does not change its decision
        const decider = lease?.decider ?? this.d.policies.current();
        const res = await provisionNode(item.identity, { rpc, decider, signer: this.d.signer, signerGate: this.breaker, csr: this.d.csr, observer: obs, onInventory: this.d.onInventory, trace: this.trace, approval: this.grant, configuring: this.configuring }, this.o.flow, ac.signal, watch);
        const r = res.record;
        record = r;
        again = this.restarted.delete(item.identity);
        // a second server answered: the "restart" was most likely its twin coming up, and starting again would not tell them apart
        if (watch.conflict?.kind === "second_reply") again = false;
        if (again) Object.assign(r, { outcome: "error", reason: `the node restarted mid-flow (new startup event); starting it again (${r.reason})` });
        if (watch.conflict) res.holdMs = this.conflicted(r, watch.conflict, res.holdMs);
        outcome = r.outcome;
        r.durations.queued = item.waitedMs;
        this.count(r.identity, r.outcome);
        const m = this.d.metrics;
        m.nodeDuration.labels(this.o.site, r.outcome).observe((r.durations.total ?? 0) / 1000);
        if (res.provisioned) m.provisioned.labels(this.o.site).inc();
        if (r.outcome === "error" || r.outcome === "refused") m.provisionErrors.labels(this.o.site).inc();
        this.writeRecord(r);
        const level = r.outcome === "error" || r.outcome === "refused" || r.outcome === "conflict" ? "warn" : "info";
        const line = { identity: r.identity, outcome: r.outcome, policy: r.policy?.version, ms: r.durations.total };
        // nothing answers for a node: routine one by one, a flood when announcements are forged;
        // each is in the audit, the metrics and the node registry, the log gets a summary
        if (r.outcome === "gone") this.goneLines.warn("gone", line, r.reason);
        else this.d.log[level](line, r.reason || r.outcome);
        const held = again ? (this.queue.done(item.identity), 0) : this.schedule(item.identity, r.outcome, res.holdMs, res.retryAfterMs);
        // a forged reply beside the node's own: try again soon, preferring the reply that passes the checks
        if (!again && watch.conflict?.kind === "invalid_and_valid") this.queue.wantAfterHold(item.identity, "retry");
        this.nodes.recorded(r, held);
        this.showConflict(r.identity);
        await this.approvalRecorded(r, res.pending);
        this.emit("record", r);
      } catch (e) {
        // provisionNode does not throw; this guards the worker loop against our own bugs
        this.d.log.error({ identity: item.identity, err: (e as Error).stack }, "worker failure");
        this.restarted.delete(item.identity);
        this.queue.done(item.identity);
      } finally {
        lease?.end(record);
        this.inflight.delete(item.identity);
        this.toldToRestart.delete(item.identity);
        this.watches.delete(item.identity);
        if (rpc.held()) {
          this.slots.release();
          this.busy--;
        }
        await this.d.claims?.release(item.identity, outcome).catch((e: Error) => this.d.log.warn({ identity: item.identity, err: e.message }, "could not release node claim"));
        // after the release, so the fresh flow claims the node anew
        if (again) this.offer(item.identity, "event");
      }
    }
  }

  private readonly trace = (identity: string, step: string, result: "start" | "ok" | "error") => {
    // from here on the node restarts because we told it to: its next startup event is expected
    if (result === "start" && RESTARTING_STEPS.has(step)) this.toldToRestart.add(identity);
    this.nodes.step(identity, step, result);
  };

  private readonly grant = (identity: string) => {
    const e = this.approvals.get(identity);
    return e?.status === "granted" && e.grant ? e.grant : undefined;
  };

  /** a node that now waits for approval is stored (shared under HA); an approved one that was configured leaves the store */
  private async approvalRecorded(r: DecisionRecord, pending: import("./flow.js").FlowResult["pending"]): Promise<void> {
    try {
      if (r.outcome === "awaiting_approval" && pending) {
        await this.approvals.put({ identity: r.identity, status: "waiting", since: r.time, reason: r.approval?.reason ?? r.reason, decision: approvalDecision(pending.decision), inventory: pending.inventory, rawInventory: pending.rawInventory });
      } else if (r.outcome === "configure" && this.approvals.get(r.identity)) {
        await this.approvals.delete(r.identity);
      }
    } catch (e) {
      this.d.log.error({ identity: r.identity, err: (e as Error).message }, "could not store the node's approval state");
    }
  }

  /** the node is done for now: hold it, or schedule its retry (retry.ts); returns the hold */
  private schedule(identity: string, outcome: string, holdMs: number, retryAfterMs?: number): number {
    const plan = this.retries.plan(identity, outcome, holdMs, retryAfterMs, performance.now() - this.brokerBackAt);
    if ("retryInMs" in plan) {
      this.queue.done(identity);
      this.queue.retryIn(identity, plan.retryInMs);
      return 0;
    }
    this.queue.done(identity, plan.holdMs);
    if (plan.thenRetry) this.queue.wantAfterHold(identity, "retry");
    return plan.holdMs;
  }

  /** when the broker connection last dropped or came back: nodes nothing answers for are retried for a while after (retry.ts) */
  private brokerBackAt = -Infinity;

  /**
   * The broker connection dropped (or came back): until it has settled, a node nothing answers
   * for may only not have subscribed again yet. Marked at the drop too, because the calls held
   * over the outage can get their no-responders before the client reports the reconnect.
   */
  brokerUnsettled(): void {
    this.brokerBackAt = performance.now();
  }

  /**
   * The broker is back: nodes waiting for a retry go now rather than at their backoff's end, and
   * a discovery soon after finds the nodes whose announcements the outage lost.
   */
  retryNow(): number {
    this.brokerUnsettled();
    if (!this.active) return 0;
    // the second at the end of the window in which nodes nothing answers for are retried
    // (retry.ts): the servers whose own reconnect backoff took longer
    this.intake.rediscoverAfter([REDISCOVER_AFTER_RECONNECT_MS, this.retries.settlingMs]);
    const n = this.queue.releaseRetries(true);
    if (n) this.d.log.info({ nodes: n }, "retrying failed nodes now");
    return n;
  }

  private count(identity: string, outcome: string): void {
    this.recordCounts[outcome] = (this.recordCounts[outcome] ?? 0) + 1;
    const before = this.latestOutcome.get(identity);
    if (before === outcome) return;
    if (before !== undefined) this.counts[before]!--;
    this.latestOutcome.set(identity, outcome);
    this.counts[outcome] = (this.counts[outcome] ?? 0) + 1;
  }

  /**
   * A node's flow saw more than one server answer as it. Counted by step; held until cleared when
   * two valid replies came (twins cannot be told apart by retrying), only briefly when one of the
   * replies failed the checks (prefer the node that passes them). Returns the node's hold.
   */
  private conflicted(r: DecisionRecord, c: ReplyConflict, holdMs: number): number {
    this.d.metrics.conflicts.labels(this.o.site, c.step).inc();
    if (r.outcome === "configure") {
      // the second reply came after configure was sent: too late to stop, not too late to say so
      r.warnings = [...(r.warnings ?? []), `another server answered as this node after configure was sent (${c.step}: ${c.detail})`];
    } else if (r.outcome !== "conflict") {
      // the flow ended otherwise (an error, cancelled by the twin's startup event): the conflict is what happened
      Object.assign(r, { outcome: "conflict", reason: `conflicting replies to ${c.step}: ${c.detail} (the flow had ended: ${r.reason})` });
    }
    if (c.kind === "invalid_and_valid") return Math.max(holdMs, INVALID_CONFLICT_HOLD_MS);
    this.conflicts.hold({ identity: r.identity, step: c.step, kind: c.kind, detail: c.detail });
    return holdMs;
  }

  /** the node registry shows a held conflict as its state, for `nodes list --state conflict` */
  private showConflict(identity: string): void {
    const c = this.conflicts.get(identity);
    if (c) this.nodes.hold(identity, "conflict", `conflicting replies to ${c.step}: ${c.detail}; held until cleared (nodes clear)`);
  }

  /** a second reply outside a node's flow (discovery): held and recorded now, or the flow in progress ends in conflict */
  private duplicateReply(identity: string, step: string, detail: string): void {
    const c: ReplyConflict = { step, kind: "second_reply", detail };
    const watch = this.watches.get(identity);
    if (watch) return watch.conflicted(c);
    if (this.conflicts.isHeld(identity) || !this.active) {
      this.conflicts.hold({ identity, ...c });
      return;
    }
    const r: DecisionRecord = { identity, time: new Date().toISOString(), outcome: "conflict", reason: `conflicting replies to ${step}: ${detail}`, fired: [], durations: {} };
    this.conflicted(r, c, 0);
    this.count(identity, "conflict");
    this.writeRecord(r);
    this.nodes.recorded(r, 0);
    this.showConflict(identity);
    this.d.log.warn({ identity, outcome: r.outcome, step }, r.reason);
    this.emit("record", r);
  }

  /** clears a held conflict (the operator's clear action); the node is offered again right after. False when it was not held. */
  private clearConflict(identity: string): boolean {
    const c = this.conflicts.clear(identity);
    if (!c) return false;
    this.d.log.warn({ identity, step: c.step, since: c.since }, "conflict cleared by the operator");
    // after the operator action has finished its own bookkeeping of the node
    setImmediate(() => this.offer(identity, "manual"));
    return true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.queue.pause();
    this.d.metrics.paused.labels(this.o.site).set(1);
    this.d.log.warn("provisioning paused");
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.queue.resume();
    this.d.metrics.paused.labels(this.o.site).set(0);
    this.d.log.warn("provisioning resumed");
  }

  /** HA: a standby neither takes intake nor runs discovery; losing leadership drops queued work. */
  setActive(active: boolean, role: string): void {
    const was = this.active;
    this.active = active;
    this.role = role;
    // nodes approved while no instance was active (or by another instance's operator) go now
    if (active && !was) for (const e of this.approvals.all()) if (e.status === "granted") this.offer(e.identity, "manual");
    if (!active) {
      const n = this.queue.clear();
      if (n) this.d.log.warn({ dropped: n }, "dropped queued nodes on losing the active role");
      // the next leader starts on these nodes too: stop ours so no node has two provisioners at once
      if (this.inflight.size) this.d.log.warn({ aborted: this.inflight.size }, "cancelling nodes in flight on losing the active role");
      for (const ac of this.inflight.values()) ac.abort();
    }
  }

  discoverNow(): Promise<number> {
    return this.intake.discoverNow();
  }

  status(): ProvisionerStatus {
    const pm = this.d.policies;
    const ref = pm.loaded ? pm.current().ref : undefined;
    return {
      identity: this.o.identity,
      site: this.o.site,
      role: this.role,
      paused: this.paused,
      ready: pm.loaded && !this.d.nc.isClosed() && this.active && (this.breaker?.up ?? true),
      connected: !this.d.nc.isClosed(),
      policy: ref,
      lastReload: pm.lastReload,
      lastReloadError: pm.lastError,
      queue: { queued: this.queue.size, busy: this.queue.busy, held: this.queue.heldCount, dropped: this.queue.dropped, retrying: this.queue.retrying },
      signer: this.d.signer ? { kind: this.d.signer.kind, up: this.breaker?.up ?? true } : undefined,
      busyWorkers: this.busy,
      workers: this.o.workers,
      counts: Object.fromEntries(Object.entries(this.counts).filter(([, n]) => n > 0)),
      records: { ...this.recordCounts },
      conflicts: { held: this.conflicts.size, nodes: this.conflicts.list() },
      startedAt: this.startedAt,
    };
  }

  /** Graceful stop: no new intake, let in-flight nodes finish (up to drainMs), then cancel the rest. */
  async stop(drainMs = 30_000): Promise<void> {
    this.stopping = true;
    this.stopAc.abort();
    clearInterval(this.heldTimer);
    this.breaker?.close();
    await this.intake.stop();
    this.warns.stop();
    this.goneLines.stop();
    this.queue.clear();
    this.queue.close();
    const all = Promise.all(this.workers);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), drainMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      for (const ac of this.inflight.values()) ac.abort();
      await all;
    }
  }
}
