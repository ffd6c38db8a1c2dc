/**
 * Leader election on a JetStream KV key, compatible with the reference (go-choria
 * providers/election/streams as used by the Go provisioner): bucket CHORIA_LEADER_ELECTION,
 * key `provisioner`, value = the candidate's name, the bucket's TTL bounds how long a dead
 * leader blocks the key (nats-server 2.9 has no per-key TTL), candidates `create` the key,
 * the leader `update`s it with the revision of its last write.
 *
 * Beyond the reference, so failover is quick and the leader is never stale:
 *  - every candidate watches the key: a delete (clean shutdown of the leader) triggers a
 *    campaign at once, and a leader's write tells candidates when its key would expire, so
 *    they campaign right after that instead of up to one interval later;
 *  - the leader holds a local lease: if it has not renewed within TTL (measured from before
 *    its last successful write, so the lease always ends before the key can expire on the
 *    server) it stands down by itself, e.g. while NATS is away;
 *  - a leader that sees the key deleted or rewritten by someone else stands down at once;
 *  - a transient error (timeout, broker restarting) is retried until the lease runs out,
 *    instead of giving up leadership on the first failed renewal;
 *  - a candidate that finds its own (stale) name in the key re-takes it with a revision check
 *    rather than waiting a TTL for its own key to expire;
 *  - the leader renews every TTL/4, not 0.75 x TTL: its key then outlives a broker outage of up
 *    to leaseMarginMs(TTL) at any moment, where 0.75 x TTL left a quarter of the TTL minus the
 *    reconnect, about 1 s of a 10 s TTL;
 *  - a renewal refused for its revision while the key still holds our name is our own write that
 *    landed with its reply lost (sent as the broker went away, delivered on reconnect): the
 *    leader takes that revision and renews again instead of standing down.
 * After winning, a candidate waits `standDownMs` before acting, so a deposed leader that
 * missed the change has time to notice (the reference waits one campaign interval).
 */
import { EventEmitter } from "node:events";
import type { KV, KvEntry, NatsConnection, QueuedIterator } from "nats";
import { errorText, isWrongRevision, openBucket, silentLogger, withDeadline, type HaLogger } from "./kv.js";

export const ELECTION_BUCKET = "CHORIA_LEADER_ELECTION";
export const ELECTION_KEY = "provisioner";
/** the Choria broker's default TTL for CHORIA_LEADER_ELECTION */
export const DEFAULT_ELECTION_TTL_MS = 60_000;
/** we allow shorter TTLs than the reference's 5 s so tests can fail over quickly */
export const MIN_ELECTION_TTL_MS = 1000;

/**
 * The longest broker outage (stop to start) a leader survives at its worst moment, just before a
 * renewal: the key lives TTL after the last write, which is up to TTL/4 old when the outage
 * begins; after the broker's return come the client's reconnect (up to 1.5 s with connectNats'
 * 1 s wait and 0.5 s jitter), the next renewal attempt (up to 0.5 s) and the lease's own margin
 * (0.25 s), with 0.75 s to spare for the broker's start and a loaded machine.
 */
export function leaseMarginMs(ttlMs: number): number {
  return Math.max(0, Math.round(ttlMs * 0.75) - 3000);
}

function opTimeout(ttlMs: number): number {
  return Math.max(300, Math.min(5000, Math.round(ttlMs / 3)));
}

export type ElectorState = "stopped" | "candidate" | "elected" | "leader";

export interface ElectorOptions {
  nc: NatsConnection;
  /** unique per running instance; written as the key's value */
  name: string;
  bucket?: string;
  key?: string;
  apiPrefix?: string;
  /** TTL when the bucket has to be created; an existing bucket keeps its own */
  ttlMs?: number;
  replicas?: number;
  /** wait between winning the key and acting as leader; default min(1 s, campaign interval) */
  standDownMs?: number;
  /** the first campaign waits a random 0..splayMs; default min(5 s, TTL/4) like the reference's startup splay */
  splayMs?: number;
  log?: HaLogger;
}

export interface LeadershipChange {
  leader: boolean;
  reason: string;
}

/** another instance's write of the election key, as this one saw it (watch or campaign) */
export interface LeaderObserved {
  leader: string;
  revision: number;
}

export declare interface Elector {
  on(event: "change", listener: (c: LeadershipChange) => void): this;
  on(event: "observed", listener: (o: LeaderObserved) => void): this;
}

export class Elector extends EventEmitter {
  readonly name: string;
  readonly bucket: string;
  readonly key: string;
  readonly ttlMs: number;
  /** how often a candidate campaigns; 0.75 x TTL as in the reference */
  readonly intervalMs: number;
  /** how often the leader renews: TTL/4, so the key outlives a broker restart (leaseMarginMs) */
  readonly renewMs: number;
  readonly standDownMs: number;
  /** bound on every KV call: a third of the TTL leaves room to retry within the lease */
  private readonly opMs: number;
  private readonly splayMs: number;
  private readonly log: HaLogger;
  private readonly kv: KV;

  private _state: ElectorState = "stopped";
  /** revision of our last successful write while elected/leader */
  private rev = 0;
  /** monotonic ms after which we no longer trust that the key is ours */
  private leaseEnd = 0;
  private timer?: NodeJS.Timeout;
  private leaseTimer?: NodeJS.Timeout;
  private standDownTimer?: NodeJS.Timeout;
  private watchUnavailable = false;
  private watcher?: QueuedIterator<KvEntry>;
  private watching?: Promise<void>;
  /** the campaign in flight; campaigns never overlap */
  private running?: Promise<void>;
  private rerun = false;
  /** wall-clock ms at which the key last written by someone else would expire, from the watch */
  private otherExpiresAt = 0;
  /** last value seen in the key (for status and logs) */
  leaderName?: string;

  private constructor(o: ElectorOptions, kv: KV, ttlMs: number) {
    super();
    this.name = o.name;
    this.bucket = o.bucket ?? ELECTION_BUCKET;
    this.key = o.key ?? ELECTION_KEY;
    this.kv = kv;
    this.ttlMs = ttlMs;
    this.intervalMs = Math.round(ttlMs * 0.75);
    this.renewMs = Math.round(ttlMs / 4);
    this.standDownMs = o.standDownMs ?? Math.min(1000, this.intervalMs);
    this.opMs = opTimeout(ttlMs);
    this.splayMs = o.splayMs ?? Math.min(5000, Math.round(ttlMs / 4));
    this.log = o.log ?? silentLogger;
  }

  /** Opens the bucket and checks its TTL; does not campaign yet. */
  static async open(o: ElectorOptions): Promise<Elector> {
    const bucket = o.bucket ?? ELECTION_BUCKET;
    const ttl = o.ttlMs ?? DEFAULT_ELECTION_TTL_MS;
    // KV requests must answer well inside the TTL, or a slow request could outlive the lease
    const { kv, ttlMs } = await openBucket(o.nc, bucket, { ttlMs: ttl, replicas: o.replicas, apiPrefix: o.apiPrefix, timeoutMs: opTimeout(ttl) });
    if (ttlMs <= 0) throw new Error(`KV bucket ${bucket} has no TTL: a crashed leader would hold the election forever; recreate it with a TTL (e.g. nats kv add ${bucket} --ttl 60s)`);
    if (ttlMs < MIN_ELECTION_TTL_MS) throw new Error(`KV bucket ${bucket} TTL ${ttlMs}ms is below the minimum ${MIN_ELECTION_TTL_MS}ms`);
    if (ttlMs > 3_600_000) throw new Error(`KV bucket ${bucket} TTL ${ttlMs}ms is above 1 hour`);
    return new Elector(o, kv, ttlMs);
  }

  get state(): ElectorState {
    return this._state;
  }

  /** true only once the stand-down wait after winning has passed */
  get isLeader(): boolean {
    return this._state === "leader";
  }

  start(): void {
    if (this._state !== "stopped") return;
    this._state = "candidate";
    this.ensureWatch();
    this.schedule(Math.floor(Math.random() * (this.splayMs + 1)));
  }

  /**
   * Stops campaigning. A leader deletes the key (only if it still holds our revision) so a
   * standby takes over at once instead of a TTL later.
   */
  async stop(): Promise<void> {
    if (this._state === "stopped") return;
    const wasLeader = this._state === "leader";
    this._state = "stopped";
    this.clearTimers();
    this.watcher?.stop();
    // a campaign in flight could still win; wait for it so the delete below sees its revision
    await this.running;
    await this.watching;
    const rev = this.rev;
    if (rev > 0) {
      try {
        await withDeadline(this.kv.delete(this.key, { previousSeq: rev }), this.opMs);
        this.log.info({ election: this.key }, "resigned leadership: deleted the election key");
      } catch (e) {
        // wrong revision: someone else holds it already; anything else: it expires after the TTL
        this.log.warn({ election: this.key, err: errorText(e) }, "could not delete the election key on resigning");
      }
    }
    this.rev = 0;
    if (wasLeader) this.emit("change", { leader: false, reason: "stopped" } satisfies LeadershipChange);
  }

  private clearTimers(): void {
    clearTimeout(this.timer);
    clearTimeout(this.leaseTimer);
    clearTimeout(this.standDownTimer);
    this.timer = this.leaseTimer = this.standDownTimer = undefined;
  }

  private schedule(ms: number): void {
    if (this._state === "stopped") return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.campaign(), Math.max(0, ms));
  }

  /** Runs one campaign step now; if one is in flight, runs another right after it. */
  private campaign(): void {
    if (this._state === "stopped") return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.step()
      .catch((e) => this.log.error({ err: errorText(e) }, "election step failed"))
      .finally(() => {
        this.running = undefined;
        if (this.rerun && this._state !== "stopped") {
          this.rerun = false;
          this.campaign();
        }
      });
  }

  private async step(): Promise<void> {
    this.ensureWatch();
    if (this._state === "candidate") await this.tryCreate();
    else if (this._state === "elected" || this._state === "leader") await this.renew();
  }

  private async tryCreate(): Promise<void> {
    const sent = performance.now();
    try {
      const rev = await withDeadline(this.kv.create(this.key, this.name), this.opMs);
      if (this._state !== "candidate") {
        this.rev = rev; // stopped meanwhile: stop() deletes the key with this revision
        return;
      }
      this.won(rev, sent, "created the election key");
      return;
    } catch (e) {
      if (this._state !== "candidate") return;
      if (!isWrongRevision(e)) {
        this.log.debug({ err: errorText(e) }, "campaign failed, retrying");
        this.schedule(Math.min(this.intervalMs, 1000));
        return;
      }
    }
    // the key exists: if it carries our own name (we lost our lease while NATS was away but
    // the key survived) take it back with a revision check rather than wait for it to expire
    try {
      const cur = await withDeadline(this.kv.get(this.key), this.opMs);
      if (cur && cur.operation === "PUT" && cur.string() === this.name) {
        const sent2 = performance.now();
        const rev = await withDeadline(this.kv.update(this.key, this.name, cur.revision), this.opMs);
        if (this._state !== "candidate") {
          this.rev = rev;
          return;
        }
        this.won(rev, sent2, "re-took our own election key");
        return;
      }
      if (cur?.operation === "PUT") this.seen(cur);
    } catch (e) {
      this.log.debug({ err: errorText(e) }, "could not read the election key");
    }
    this.schedule(this.nextCandidateDelay());
  }

  /** Candidates retry right after the holder's key would expire, at the latest every interval. */
  private nextCandidateDelay(): number {
    if (this.otherExpiresAt === 0) return this.intervalMs;
    const untilExpiry = this.otherExpiresAt - Date.now() + 100;
    // clocks of broker and client may differ: never spin faster than every 100 ms
    return Math.max(100, Math.min(this.intervalMs, untilExpiry));
  }

  private won(rev: number, sent: number, how: string): void {
    this.rev = rev;
    this._state = "elected";
    this.otherExpiresAt = 0;
    this.leaderName = this.name;
    this.extendLease(sent);
    this.log.info({ election: this.key, revision: rev, standDownMs: this.standDownMs }, `${how}; acting as leader after the stand-down wait`);
    this.schedule(this.renewMs);
    this.standDownTimer = setTimeout(() => {
      if (this._state !== "elected") return;
      this._state = "leader";
      this.emit("change", { leader: true, reason: how } satisfies LeadershipChange);
    }, this.standDownMs);
  }

  private async renew(): Promise<void> {
    const sent = performance.now();
    try {
      const rev = await withDeadline(this.kv.update(this.key, this.name, this.rev), this.opMs);
      if (this._state === "stopped") {
        this.rev = rev; // stopped meanwhile: stop() deletes the key with this revision, not the one before it
        return;
      }
      if (this._state !== "elected" && this._state !== "leader") return;
      this.rev = rev;
      this.extendLease(sent);
      this.schedule(this.renewMs);
    } catch (e) {
      if (this._state !== "elected" && this._state !== "leader") return;
      if (isWrongRevision(e)) {
        if (await this.ownWriteLanded()) return this.schedule(0);
        return this.lose("the election key was changed by someone else");
      }
      if (performance.now() >= this.leaseEnd) return this.lose(`could not renew within the TTL (${this.ttlMs}ms): ${errorText(e)}`);
      // not a definite loss: retry while the lease lasts; the lease timer ends it otherwise
      this.log.warn({ err: errorText(e) }, "could not renew leadership, retrying");
      this.schedule(Math.min(500, Math.max(50, this.leaseEnd - performance.now() - 50)));
    }
  }

  /**
   * After a renewal refused for its revision: the key still holds our name at a newer revision
   * when an earlier renewal of ours landed with its reply lost (nobody else writes our name, and
   * any other write would have replaced it). Takes that revision; the lease stays where our last
   * answered write put it, so the renewal that follows must still land within it.
   */
  private async ownWriteLanded(): Promise<boolean> {
    try {
      const cur = await withDeadline(this.kv.get(this.key), this.opMs);
      if (this._state !== "elected" && this._state !== "leader") return false;
      if (!cur || cur.operation !== "PUT" || cur.string() !== this.name || cur.revision <= this.rev) return false;
      this.log.info({ election: this.key, revision: cur.revision, was: this.rev }, "a renewal whose reply was lost had landed: keeping leadership with its revision");
      this.rev = cur.revision;
      return true;
    } catch (e) {
      this.log.debug({ err: errorText(e) }, "could not read the election key");
      return false;
    }
  }

  private extendLease(sentAt: number): void {
    // measured from before the write: the server stamped it later, so our lease ends first
    this.leaseEnd = sentAt + this.ttlMs - Math.min(250, this.ttlMs / 10);
    this.armLease();
  }

  private armLease(): void {
    clearTimeout(this.leaseTimer);
    // +1: timers and performance.now() may disagree by a fraction of a millisecond
    this.leaseTimer = setTimeout(() => {
      if (this._state !== "elected" && this._state !== "leader") return;
      if (performance.now() >= this.leaseEnd) this.lose(`could not renew within the TTL (${this.ttlMs}ms)`);
      else this.armLease();
    }, Math.max(0, this.leaseEnd - performance.now()) + 1);
  }

  private lose(reason: string): void {
    const wasLeader = this._state === "leader";
    this._state = "candidate";
    this.rev = 0;
    clearTimeout(this.leaseTimer);
    clearTimeout(this.standDownTimer);
    this.log.warn({ election: this.key, reason }, "lost leadership");
    if (wasLeader) this.emit("change", { leader: false, reason } satisfies LeadershipChange);
    this.schedule(this.nextCandidateDelay());
  }

  /** remembers when someone else's write would expire */
  private seen(e: KvEntry): void {
    const value = e.string();
    if (value !== this.leaderName) this.log.info({ election: this.key, leader: value }, "observed election leader");
    this.leaderName = value;
    this.otherExpiresAt = e.created.getTime() + this.ttlMs;
    this.emit("observed", { leader: value, revision: e.revision } satisfies LeaderObserved);
  }

  /** (Re)starts the key watch; campaigns re-check it, so a watch lost to a broker restart comes back. */
  private ensureWatch(): void {
    if (this.watching || this.watchUnavailable || this._state === "stopped") return;
    this.watching = (async () => {
      try {
        const w = await this.kv.watch({ key: this.key });
        if (this._state === "stopped") {
          w.stop();
          return;
        }
        this.watcher = w;
        for await (const e of w) this.onEntry(e);
      } catch (e) {
        // a Choria Broker gives the provisioning account no consumers (no responders, 503):
        // campaigns alone then notice a vacated key, within the bucket's TTL
        if (errorText(e) === "503") {
          this.watchUnavailable = true;
          this.log.info({ election: this.key }, "the broker allows no watch of the election key; relying on campaigns");
        } else this.log.debug({ err: errorText(e) }, "election key watch ended");
      } finally {
        this.watcher = undefined;
        this.watching = undefined;
      }
    })();
  }

  private onEntry(e: KvEntry): void {
    if (this._state === "stopped") return;
    const ours = e.operation === "PUT" && e.string() === this.name;
    if (this._state === "elected" || this._state === "leader") {
      // older entries (the write we replaced) say nothing; a newer one not by us means we lost
      if (e.revision > this.rev && !ours) {
        this.lose(e.operation === "PUT" ? `the election key was taken by ${e.string()}` : "the election key was deleted");
      }
      return;
    }
    if (e.operation !== "PUT") {
      // the leader resigned (or an operator forced an election): campaign now. Not by a timer: a
      // campaign step in flight read the key before the delete, and would replace that timer
      // with its own, an interval later; campaign() runs again right after such a step instead
      this.otherExpiresAt = 0;
      this.leaderName = undefined;
      clearTimeout(this.timer);
      this.campaign();
      return;
    }
    if (!ours) {
      this.seen(e);
      this.schedule(this.nextCandidateDelay());
    }
  }
}
