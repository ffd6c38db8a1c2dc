/**
 * The closed loop: every node the daemon restarted is awaited at home (tracker.ts, fed by the
 * home watches of watcher.ts); each verdict goes into the audit as a follow-up record, the
 * metrics and the log, and into the guarded rollout (rollout.ts) and the broker sets' health
 * (health.ts), which the gate (gate.ts) applies to the next decisions.
 */
import { EventEmitter } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import type { Logger } from "pino";
import type { ArrivalSettings, RolloutSettings } from "../config/index.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ArrivalRecord, Decider, DecisionRecord, PolicyRef } from "../types/index.js";
import { RolloutGate } from "./gate.js";
import { BrokerSetHealth, brokerSetLabel, type BrokerSetStatus } from "./health.js";
import { Rollout, type RolloutChange, type RolloutStatus } from "./rollout.js";
import { ArrivalTracker, type Expectation, type Verdict } from "./tracker.js";
import { HomeWatches, type HomeCredentials, type HomeStatus } from "./watcher.js";
import { callerFromFiles, HomeRequests, type CallerCredentials, type HomeRequestOptions } from "./home-requests.js";

export interface ArrivalLoopDeps {
  site: string;
  identity: string;
  metrics: Metrics;
  log: Logger;
  /** the audit sink's write */
  audit(r: ArrivalRecord): void;
  now?: () => number;
}

export interface ArrivalStatus {
  deadlineMs: number;
  pending: number;
  lostCount: number;
  /** the most recent lost nodes not seen since (at most 1000) */
  lost: Array<{ identity: string; lostAt: string; brokerSet?: string; brokers: string[]; policyVersion?: string; decided: string }>;
  rollout: RolloutStatus;
  brokerSets: BrokerSetStatus[];
  homes: HomeStatus[];
}

const MIDDLEWARE_HOSTS = "plugin.choria.middleware_hosts";

function credentials(l: ArrivalSettings["login"]): HomeCredentials {
  return {
    tls: l.tls ? { caFile: l.tls.ca, certFile: l.tls.cert, keyFile: l.tls.key, insecure: l.tls.insecure } : undefined,
    user: l.user,
    pass: l.password,
    token: l.token,
    credsFile: l.creds,
  };
}

/** the version an earlier run trusted (rollout.state_file); undefined when there is none yet */
export function readTrusted(file: string | undefined): PolicyRef | undefined {
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read rollout.state_file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const t = (JSON.parse(text) as { trusted?: PolicyRef }).trusted;
    if (t && typeof t.hash === "string" && typeof t.version === "string" && typeof t.name === "string") return t;
  } catch {
    /* reported below */
  }
  throw new Error(`rollout.state_file ${file} is not a rollout state file (expected {"trusted": {"name", "version", "hash"}}); remove it to start afresh`);
}

export declare interface ArrivalLoop {
  /** every verdict, as written to the audit */
  on(event: "arrival", listener: (r: ArrivalRecord) => void): this;
  /** a home watch connected (true) or lost its connection (false) */
  on(event: "home", listener: (home: string, connected: boolean) => void): this;
}

export class ArrivalLoop extends EventEmitter {
  readonly gate: RolloutGate;
  private readonly tracker: ArrivalTracker;
  private readonly rollout: Rollout;
  private readonly health: BrokerSetHealth;
  private readonly watches: HomeWatches;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly s: { arrival: ArrivalSettings; rollout: RolloutSettings },
    private readonly d: ArrivalLoopDeps,
  ) {
    super();
    this.now = d.now ?? Date.now;
    const a = s.arrival;
    this.tracker = new ArrivalTracker({ deadlineMs: a.deadlineMs });
    this.rollout = new Rollout(s.rollout, readTrusted(s.rollout.stateFile));
    this.health = new BrokerSetHealth({ window: a.health.window, minLost: a.health.minLost, maxLost: s.rollout.maxLost });
    const m = d.metrics;
    this.watches = new HomeWatches(
      a.homes.map((h) => ({ name: h.name, brokers: h.brokers, brokerSets: h.brokerSets, credentials: credentials(h.login) })),
      credentials(a.login),
      {
        seen: (identity, home) => {
          const v = this.tracker.seen(identity, home, this.now());
          if (v) this.verdict(v);
        },
        connected: (home) => {
          this.tracker.homeConnected(home, this.now());
          m.homeWatches.labels(d.site, home).set(1);
          this.emit("home", home, true);
        },
        disconnected: (home) => {
          this.tracker.homeDisconnected(home);
          m.homeWatches.labels(d.site, home).set(0);
          this.emit("home", home, false);
        },
        invalid: (home, detail) => {
          m.intakeErrors.labels(d.site, "arrival", "invalid").inc();
          d.log.warn({ home }, `arrival watch: ${detail}`);
        },
      },
      d.log,
      d.identity,
    );
    this.gate = new RolloutGate(this.rollout, this.health, {
      deciding: (dec) => void this.watches.homesFor(dec.brokerSet, dec.brokers),
      ended: (r) => this.ended(r),
    });
  }

  start(): void {
    this.watches.start();
    // verdicts need no more precision than this: the deadline is minutes by default
    const tick = Math.max(50, Math.min(1000, Math.floor(this.s.arrival.deadlineMs / 10)));
    this.timer = setInterval(() => this.expire(), tick);
    this.timer.unref();
  }

  /** A policy version was loaded (at start and on every successful reload). */
  policyLoaded(d: Decider): void {
    this.changed(this.rollout.load(d, this.now()));
  }

  private expire(): void {
    for (const v of this.tracker.expire(this.now())) this.verdict(v);
    this.d.metrics.arrivalsPending.labels(this.d.site).set(this.tracker.pendingCount);
  }

  /** a node's flow ended: wait for it at home if it was restarted (or its restart's reply was lost) */
  private ended(r: DecisionRecord): void {
    const restarted = r.outcome === "configure";
    // configure succeeded but restart did not answer: the only step after configure is restart
    const maybe = r.outcome === "error" && r.configuration !== undefined;
    if (!restarted && !maybe) return;
    const brokers = (r.configuration?.[MIDDLEWARE_HOSTS] ?? "").split(",").map((b) => b.trim()).filter(Boolean);
    const homes = this.watches.homesFor(r.brokerSet, brokers);
    if (!homes.length) return;
    const now = this.now();
    const e: Expectation = { identity: r.identity, decidedAt: Date.parse(r.time), restartedAt: now, decisionTime: r.time, confirmed: restarted, policy: r.policy, brokerSet: r.brokerSet, brokers, homes };
    const v = this.tracker.expect(e, now);
    if (v) this.verdict(v);
    this.d.metrics.arrivalsPending.labels(this.d.site).set(this.tracker.pendingCount);
  }

  private verdict(v: Verdict): void {
    const { d } = this;
    const e = v.expectation;
    const set = brokerSetLabel(e.brokerSet);
    d.metrics.arrivals.labels(d.site, v.result, e.policy?.version ?? "", set).inc();
    if (v.result === "arrived" && v.afterMs !== undefined) d.metrics.arrivalTime.labels(d.site, set).observe(v.afterMs / 1000);
    d.metrics.lostNodes.labels(d.site).set(this.tracker.lostCount);
    const rec: ArrivalRecord = { kind: "arrival", identity: e.identity, time: new Date(v.at).toISOString(), result: v.result, decision: { time: e.decisionTime, policy: e.policy, brokerSet: e.brokerSet }, brokers: e.brokers };
    if (v.afterMs !== undefined) rec.afterMs = v.afterMs;
    if (v.seenAt) rec.seenAt = v.seenAt;
    d.audit(rec);
    this.emit("arrival", rec);
    const fields = { identity: e.identity, brokerSet: e.brokerSet, brokers: e.brokers, policy: e.policy?.version, ms: v.afterMs };
    if (v.result === "lost") d.log.warn(fields, `node lost: not seen at home within ${this.s.arrival.deadlineMs} ms of its restart`);
    else if (v.result === "unconfirmed") d.log.warn(fields, "node not seen at home, but the home watch reconnected during its wait and may have missed it: not counted as lost");
    else if (v.result === "arrived_late") d.log.info(fields, "node arrived at home after it was reported lost");
    else d.log.debug(fields, "node arrived at home");
    // a restart whose reply was lost says nothing about the policy or the broker set
    if (!e.confirmed) return;
    if (v.result === "arrived" || v.result === "lost") {
      const tripped = this.health.record(e.brokerSet, e.brokers, v.result === "lost", v.at, e.decidedAt);
      if (tripped) {
        d.metrics.brokerSetUnhealthy.labels(d.site, tripped.name).set(1);
        d.log.error({ brokerSet: tripped.name, brokers: tripped.brokers, lost: tripped.lost, of: tripped.of }, `broker set ${tripped.name} is unhealthy: ${tripped.lost} of its last ${tripped.of} nodes were lost; nodes routed to it are deferred until it is cleared (POST /broker-sets/${tripped.name}/clear)`);
      }
    }
    const change = this.rollout.result(e.policy?.hash, v.result, e.identity, v.at, e.brokerSet);
    if (change) this.changed(change);
  }

  private changed(c: RolloutChange): void {
    const { d } = this;
    if (c.kind === "trusted") {
      d.log.info({ policy: c.ref.name, version: c.ref.version, hash: c.ref.hash }, `policy version ${c.ref.version} is trusted: ${c.why}`);
      this.remember(c.ref);
    } else if (c.kind === "canary") {
      const o = this.s.rollout;
      d.log.warn({ policy: c.ref.name, version: c.ref.version, previous: c.previous?.version }, `policy version ${c.ref.version} runs as a canary: it restarts at most ${o.canary} nodes until ${o.minArrivals} of them arrived at home; other nodes wait`);
    } else if (c.kind === "failed") {
      const f = c.failure;
      const then = c.state === "reverted" ? `version ${c.inForce?.version} decides again` : "provisioning is paused until another version is loaded or an operator acts (POST /rollout/accept or /rollout/revert)";
      d.log.error({ policy: f.ref.name, version: f.ref.version, hash: f.ref.hash, brokerSets: f.brokerSets, lostIn: f.lostIn, lost: f.lost, restarted: f.restarted }, `policy version ${f.ref.version} stopped: ${f.lost.length} of its ${f.restarted} canary nodes were lost, in broker sets ${f.lostIn.join(", ") || "(none)"} (its canary used ${f.brokerSets.join(", ") || "none"}); lost: ${f.lost.slice(0, 20).join(", ")}; ${then}`);
    } else d.log.info({ version: c.ref.version }, `policy version ${c.ref.version}: ${c.why}`);
    this.gauge();
    this.gate.changed();
  }

  private gauge(): void {
    const st = this.rollout.status();
    const g = this.d.metrics.rolloutState;
    g.reset();
    const version = st.state === "canary" ? st.canary?.ref.version : st.state === "trusted" ? st.trusted?.version : st.failed?.ref.version;
    g.labels(this.d.site, version ?? "", st.state).set(1);
  }

  private remember(ref: PolicyRef): void {
    const file = this.s.rollout.stateFile;
    if (!file || !this.s.rollout.enabled) return;
    try {
      writeFileSync(file, JSON.stringify({ trusted: ref, at: new Date(this.now()).toISOString() }, null, 2) + "\n");
    } catch (e) {
      this.d.log.error({ file, err: (e as Error).message }, "could not write rollout.state_file: a restart will not know this version is trusted");
    }
  }

  /**
   * Requests to nodes at their homes over this loop's watches, signed with each configured
   * home's client certificate (its login's tls cert and key). Throws when one cannot sign.
   */
  homeRequests(o: Omit<HomeRequestOptions, "identity" | "callers"> & { caller?: { cert: string; key: string } }): HomeRequests {
    const callers = new Map<string, CallerCredentials>();
    const shared = o.caller && callerFromFiles(o.caller.cert, o.caller.key);
    for (const h of this.s.arrival.homes) {
      const tls = h.login.tls;
      if (shared) callers.set(h.name, shared);
      else if (!tls?.cert || !tls.key) throw new Error(`arrival home ${h.name} has no client certificate (tls cert and key) to sign requests with`);
      else {
        try {
          callers.set(h.name, callerFromFiles(tls.cert, tls.key));
        } catch (e) {
          throw new Error(`arrival home ${h.name}: ${(e as Error).message}`);
        }
      }
    }
    const { caller: _, ...rest } = o;
    return new HomeRequests(this.watches, { ...rest, identity: this.d.identity, callers });
  }

  /** Operator: a broker set is healthy again. Returns how many sets of that name were cleared. */
  clearBrokerSet(name: string): number {
    const n = this.health.clear(name, this.now());
    if (n) {
      this.d.metrics.brokerSetUnhealthy.labels(this.d.site, name).set(0);
      this.d.log.warn({ brokerSet: name }, `broker set ${name} cleared by an operator: nodes are routed to it again`);
      this.gate.changed();
    }
    return n;
  }

  /** Operator: accept the failed or on-trial version, or revert to the trusted one. */
  rolloutAction(action: "accept" | "revert"): RolloutStatus {
    const c = action === "accept" ? this.rollout.accept() : this.rollout.revert(this.now());
    if (!c) throw new Error(action === "accept" ? "no version is on trial or failed: nothing to accept" : "no trusted version to revert to, or nothing to revert");
    this.changed(c);
    return this.rollout.status();
  }

  status(): ArrivalStatus {
    return {
      deadlineMs: this.s.arrival.deadlineMs,
      pending: this.tracker.pendingCount,
      lostCount: this.tracker.lostCount,
      lost: this.tracker
        .lost()
        .slice(-1000)
        .map((l) => ({ identity: l.identity, lostAt: new Date(l.at).toISOString(), brokerSet: l.e.brokerSet, brokers: l.e.brokers, policyVersion: l.e.policy?.version, decided: l.e.decisionTime })),
      rollout: this.rollout.status(),
      brokerSets: this.health.status(),
      homes: this.watches.status(),
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.watches.stop();
  }
}
