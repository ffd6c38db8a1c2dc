/**
 * Certificate renewal: nodes whose latest certificate in the ledger expires within the window are
 * asked, at their home, to go back to provisioning (`choria_provision#reprovision`, with the
 * provisioning token); the daemon's normal intake then provisions them again under the current
 * policy, and the ledger records the new certificate.
 *
 * - The due set is read from the ledger on every pass (RenewalSource), never kept: a restart of
 *   the daemon loses only which nodes were asked recently, and such a node, if it is still due,
 *   is asked again (at home it is not, while it is in provisioning mode: that costs one
 *   no-responders round trip). Only where in the window to read from is remembered (`cursor`).
 * - A token bucket spreads the requests: one token per node asked.
 * - A node asked is not asked again within `retry_after`; if no new certificate was issued for it
 *   by then, the renewal failed (`not_reprovisioned`) and the node is due again.
 * - Only an active instance renews (not a standby, not while paused), and only while a home is
 *   connected; in active-active mode each node is renewed by the instance that claims it.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { RenewalSettings } from "../config/index.js";
import type { Metrics } from "../metrics/metrics.js";
import { PROVISION_ACTION, PROVISION_AGENT } from "../protocol/index.js";
import type { DecisionRecord, DueCertificate, RenewalSource, RenewFailure, RenewRecord } from "../types/index.js";
import type { HomeCallResult } from "./home-requests.js";
import { TokenBucket } from "./token-bucket.js";

export interface RenewalDeps {
  site: string;
  metrics: Metrics;
  log: Logger;
  audit(r: RenewRecord): void;
  source: RenewalSource;
  /** a directed request to a node at whichever home it is at (HomeRequests.call) */
  call(identity: string, agent: string, action: string, data: Record<string, unknown>): Promise<HomeCallResult>;
  /** false while this instance must not renew (an HA standby, paused) or cannot (no home connected) */
  canRun(): boolean;
  /**
   * Active-active HA: every instance's ledger holds every certificate, so an instance asks a node
   * only once it holds the node's claim (false: another instance has it). `release` says whether
   * the node accepted: its claim is then kept until it expires, so the instance that asked also
   * provisions it when it comes back.
   */
  claim?(identity: string): Promise<boolean>;
  release?(identity: string, accepted: boolean): Promise<void>;
  now?: () => number;
}

interface Asked {
  cert: DueCertificate;
  at: number;
  /**
   * asking: no answer yet; requested: the node accepted and is going back to provisioning;
   * failed: see the audit; elsewhere: another instance holds its claim and renews it
   */
  state: "asking" | "requested" | "failed" | "elsewhere";
  home?: string;
  /** the outcome of its latest flow since it was asked, for the failure message */
  lastOutcome?: string;
}

export interface RenewalStatus {
  windowMs: number;
  ratePerMinute: number;
  burst: number;
  /** nodes asked within retry_after, by state */
  asking: number;
  requested: number;
  failed: number;
  /** active-active: claimed by another instance, which renews them */
  elsewhere: number;
  /** the first 1000 of them */
  asked: Array<{ identity: string; serial: string; notAfter: string; askedAt: string; state: string; home?: string }>;
}

const FAILURES: RenewFailure[] = ["refused", "unreachable", "timeout", "not_reprovisioned", "error"];
/** a ledger pass at most this often: each pass is a query, and at high rates many nodes go per pass */
const MIN_PASS_MS = 1000;

export declare interface Renewals {
  /** every renewal step, as written to the audit */
  on(event: "renew", listener: (r: RenewRecord) => void): this;
}

export class Renewals extends EventEmitter {
  private readonly bucket: TokenBucket;
  private readonly asked = new Map<string, Asked>();
  /**
   * notAfter the next pass reads the ledger from. A renewal wave goes in notAfter order and leaves
   * its old certificates in the window until they expire; finding that a certificate was replaced
   * costs the ledger a probe per row, so a pass does not step over them again: 0.8 s a pass at
   * 1M rows with 41k of them. It starts at 0 (the whole window), goes back to a node's
   * certificate when the node leaves `asked` without being renewed, and back to 0 every
   * `retry_after`, for certificates recorded late behind it (another HA instance's, replicated).
   */
  private cursor = 0;
  private cursorSince = 0;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private started = false;
  private stopped = false;
  private passing = false;

  constructor(
    private readonly s: RenewalSettings,
    private readonly d: RenewalDeps,
  ) {
    super();
    this.now = d.now ?? Date.now;
    this.bucket = new TokenBucket(s.ratePerMs, s.burst, this.now());
    const m = d.metrics.renewals;
    m.labels(d.site, "requested", "").inc(0);
    m.labels(d.site, "ok", "").inc(0);
    for (const f of FAILURES) m.labels(d.site, "failed", f).inc(0);
    m.labels(d.site, "skipped", "validity_within_window").inc(0);
    d.metrics.renewalsPending.labels(d.site).set(0);
  }

  start(): void {
    this.started = true;
    this.schedule(0);
  }

  /** the next pass on the timer; none before start() (tests drive pass() with their own clock) */
  private schedule(ms: number): void {
    if (this.stopped || !this.started) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pass(), ms);
    this.timer.unref();
  }

  /** One pass: settle overdue renewals, then ask as many due nodes as there are tokens. */
  async pass(): Promise<void> {
    if (this.stopped || this.passing) return;
    this.passing = true;
    let next = this.s.intervalMs;
    try {
      const now = this.now();
      this.expire(now);
      if (this.d.canRun()) next = this.askDue(now);
    } catch (e) {
      this.d.log.error({ err: (e as Error).message }, "certificate renewal: the pass failed; trying again at the next interval");
    } finally {
      this.passing = false;
      this.gauge();
      this.schedule(next);
    }
  }

  /** asks due nodes while tokens last; returns ms until the next pass */
  private askDue(now: number): number {
    const tokens = this.bucket.available(now);
    if (tokens < 1) return Math.max(MIN_PASS_MS, Math.min(this.s.intervalMs, this.bucket.waitMs(now)));
    const s = this.s;
    // nodes asked recently are still in the ledger's due set: look past them
    if (now - this.cursorSince >= s.retryAfterMs) {
      this.cursor = 0;
      this.cursorSince = now;
    }
    const limit = tokens + this.asked.size;
    const due = this.d.source.renewalsDue({ now, windowMs: s.windowMs, from: this.cursor, limit });
    const fresh: DueCertificate[] = [];
    const seen = new Set<string>();
    for (const c of due) {
      if (this.asked.has(c.identity) || seen.has(c.identity)) continue;
      seen.add(c.identity);
      fresh.push(c);
    }
    let taken = 0;
    for (const c of fresh) {
      if (!this.bucket.take(now)) break;
      taken++;
      this.ask(c, now);
    }
    // the rows before the cursor were seen: replaced since, revoked, or asked (and tracked here)
    const left = fresh[taken];
    this.cursor = left ? left.notAfter : due.length < limit ? now + s.windowMs : due[due.length - 1]!.notAfter;
    // more waiting: come back when the next token is there; else at the interval
    if (left) return Math.max(MIN_PASS_MS, Math.min(s.intervalMs, this.bucket.waitMs(now)));
    return s.intervalMs;
  }

  private ask(c: DueCertificate, now: number): void {
    const entry: Asked = { cert: c, at: now, state: "asking" };
    this.asked.set(c.identity, entry);
    void (async () => {
      if (this.d.claim && !(await this.d.claim(c.identity).catch(() => false))) {
        entry.state = "elsewhere";
        return;
      }
      try {
        this.answered(entry, await this.d.call(c.identity, PROVISION_AGENT, PROVISION_ACTION.reprovision, { token: this.s.token }));
      } catch (e) {
        this.failed(entry, "error", (e as Error).message);
      }
      await this.d.release?.(c.identity, entry.state === "requested").catch(() => undefined);
    })();
  }

  private answered(e: Asked, r: HomeCallResult): void {
    if (this.stopped || this.asked.get(e.cert.identity) !== e) return;
    if (!r.ok) return this.failed(e, r.failure, r.message);
    e.home = r.home;
    const msg = r.reply.statusmsg;
    if (r.reply.statuscode !== 0) return this.failed(e, "refused", msg);
    e.state = "requested";
    this.d.metrics.renewals.labels(this.d.site, "requested", "").inc();
    this.record(e, "requested", { message: (r.reply.data as { message?: string } | undefined)?.message ?? msg });
    this.d.log.info({ identity: e.cert.identity, serial: e.cert.serial, notAfter: new Date(e.cert.notAfter).toISOString(), home: r.home }, "certificate renewal: node going back to provisioning");
  }

  /** the node stays in `asked` until retry_after, so it is not asked again before then */
  private failed(e: Asked, failure: RenewFailure, message: string): void {
    if (this.stopped || this.asked.get(e.cert.identity) !== e) return;
    e.state = "failed";
    this.d.metrics.renewals.labels(this.d.site, "failed", failure).inc();
    this.record(e, "failed", { failure, message });
    const fields = { identity: e.cert.identity, serial: e.cert.serial, failure, home: e.home };
    // an unreachable node is a node that is down or gone: common, and counted
    if (failure === "unreachable") this.d.log.debug(fields, `certificate renewal failed: ${message}`);
    else this.d.log.warn(fields, `certificate renewal failed: ${message}`);
  }

  /** renewals past retry_after: not provisioned again (failed) or failed earlier; either way due again */
  private expire(now: number): void {
    for (const [id, e] of this.asked) {
      if (now - e.at < this.s.retryAfterMs) continue;
      this.asked.delete(id);
      // not renewed: due again, so the ledger is read from its certificate on
      this.cursor = Math.min(this.cursor, e.cert.notAfter);
      if (e.state !== "requested") continue;
      this.d.metrics.renewals.labels(this.d.site, "failed", "not_reprovisioned").inc();
      const message = `not provisioned again within ${this.s.retryAfterMs} ms of accepting reprovision${e.lastOutcome ? ` (its latest outcome: ${e.lastOutcome})` : ""}`;
      this.record(e, "failed", { failure: "not_reprovisioned", message });
      this.d.log.warn({ identity: id, serial: e.cert.serial }, `certificate renewal failed: ${message}`);
    }
  }

  /**
   * A node's flow ended (the provisioner's record): a node we asked that now holds a new
   * certificate is renewed. Any new certificate issued already inside the window is counted: it
   * will never be renewed (renewalsDue leaves it out).
   */
  recorded(r: DecisionRecord): void {
    if (r.outcome === "configure" && r.certificate && Date.parse(r.certificate.notAfter) - this.now() <= this.s.windowMs) this.shortLived(r);
    const e = this.asked.get(r.identity);
    if (!e) return;
    e.lastOutcome = r.outcome;
    const cert = r.certificate;
    if (r.outcome !== "configure" || !cert || cert.serial === e.cert.serial) return;
    this.asked.delete(r.identity);
    const afterMs = Math.max(0, this.now() - e.at);
    this.d.metrics.renewals.labels(this.d.site, "ok", "").inc();
    this.record(e, "renewed", { newSerial: cert.serial, afterMs });
    this.d.log.info({ identity: r.identity, serial: e.cert.serial, newSerial: cert.serial, notAfter: cert.notAfter, ms: afterMs }, "certificate renewed");
    this.gauge();
  }

  private warnedShort = false;

  private shortLived(r: DecisionRecord): void {
    this.d.metrics.renewals.labels(this.d.site, "skipped", "validity_within_window").inc();
    if (this.warnedShort) return;
    this.warnedShort = true;
    this.d.log.warn({ identity: r.identity, notAfter: r.certificate?.notAfter, policy: r.policy?.version }, `certificate issued with a validity not longer than renewal.window (${this.s.windowMs} ms): it will not be renewed automatically (counted in choria_provisioner_renewals_total{result="skipped"}; logged once)`);
  }

  private record(e: Asked, result: RenewRecord["result"], extra: Partial<RenewRecord>): void {
    const rec: RenewRecord = { kind: "renew", identity: e.cert.identity, time: new Date(this.now()).toISOString(), result, serial: e.cert.serial, notAfter: new Date(e.cert.notAfter).toISOString(), askedAt: new Date(e.at).toISOString(), ...(e.home ? { home: e.home } : {}), ...extra };
    this.d.audit(rec);
    this.emit("renew", rec);
  }

  private gauge(): void {
    let n = 0;
    for (const e of this.asked.values()) if (e.state === "requested") n++;
    this.d.metrics.renewalsPending.labels(this.d.site).set(n);
  }

  status(): RenewalStatus {
    const pending = [...this.asked.values()];
    return {
      windowMs: this.s.windowMs,
      ratePerMinute: this.s.ratePerMs * 60_000,
      burst: this.s.burst,
      asking: pending.filter((e) => e.state === "asking").length,
      requested: pending.filter((e) => e.state === "requested").length,
      failed: pending.filter((e) => e.state === "failed").length,
      elsewhere: pending.filter((e) => e.state === "elsewhere").length,
      asked: pending.slice(0, 1000).map((e) => ({ identity: e.cert.identity, serial: e.cert.serial, notAfter: new Date(e.cert.notAfter).toISOString(), askedAt: new Date(e.at).toISOString(), state: e.state, home: e.home })),
    };
  }

  /**
   * Stops passes at once; answers to requests in flight are dropped (closing the home requests
   * settles their calls). A node that accepted meanwhile is provisioned all the same, and the
   * next start finds its new certificate in the ledger.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
