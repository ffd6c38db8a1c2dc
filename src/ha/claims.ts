/**
 * Per-node claims for active-active mode: every instance takes intake and runs discovery, and
 * before provisioning a node an instance must `create` the node's key in the KV bucket
 * CHORIA_PROVISIONER_CLAIMS. Create is atomic on the server, so exactly one instance wins a
 * node; the others drop it. The bucket TTL (nats-server 2.9 has no per-key TTL) frees the
 * nodes of a crashed instance; while a node is in flight its claim is renewed (update with a
 * revision check) so a slow flow never outlives its claim.
 *
 * After the node is done the claim is deleted when another attempt makes sense (defer, error)
 * and left to expire when the node left our hands (configured and restarting, shut down,
 * upgrading): other instances that still have the node queued from the same startup event
 * would otherwise claim it the moment we let go and talk to a node that is restarting.
 */
import type { KV, NatsConnection } from "nats";
import { errorText, isWrongRevision, openBucket, silentLogger, withDeadline, type HaLogger } from "./kv.js";

export const CLAIMS_BUCKET = "CHORIA_PROVISIONER_CLAIMS";
export const DEFAULT_CLAIM_TTL_MS = 30_000;

/** outcomes after which the node restarts or goes away: keep the claim until it expires */
const KEEP_AFTER = new Set(["configure", "shutdown", "upgrade"]);

/** What the Provisioner's worker needs (ProvisionerDeps.claims). */
export interface ClaimHooks {
  /** true: this instance may provision the node now; false: another instance has it (or KV is unavailable) */
  claim(identity: string): Promise<boolean>;
  /** the node is done with `outcome` (the decision record's outcome) */
  release(identity: string, outcome: string): Promise<void>;
}

/**
 * KV keys allow [-/_=.a-zA-Z0-9] with dots as token separators (no empty tokens), and Choria
 * identities are usually FQDNs. Escape everything but [-_a-zA-Z0-9] as =XX (hex of each UTF-8
 * byte, `=` itself included) so every identity maps to one valid key and back, and keys stay
 * readable in `nats kv ls`: node1.example.net -> node1=2Eexample=2Enet.
 */
export function claimKey(identity: string): string {
  let out = "";
  for (const b of Buffer.from(identity, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[-_a-zA-Z0-9]/.test(c) ? c : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function identityOfClaimKey(key: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < key.length; i++) {
    if (key[i] === "=") {
      bytes.push(parseInt(key.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(key.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

export interface ClaimsOptions {
  nc: NatsConnection;
  /** unique per running instance; written as the claim's value */
  name: string;
  bucket?: string;
  /** TTL when the bucket has to be created; an existing bucket keeps its own */
  ttlMs?: number;
  replicas?: number;
  apiPrefix?: string;
  log?: HaLogger;
}

export interface ClaimStats {
  won: number;
  /** another instance held the node */
  refused: number;
  /** KV unavailable: the node was not provisioned (it is found again by discovery) */
  failed: number;
  /** renewals refused because the claim had expired and someone else took it */
  lost: number;
  held: number;
}

export class Claims implements ClaimHooks {
  readonly name: string;
  readonly bucket: string;
  readonly ttlMs: number;
  /** in-flight claims are renewed this often: a third of the TTL survives two failed renewals */
  readonly renewMs: number;
  /** bound on every KV call (see withDeadline) */
  private readonly opMs: number;
  private readonly kv: KV;
  private readonly log: HaLogger;
  /** identity -> revision of our claim, for nodes in flight */
  private readonly held = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private closed = false;
  readonly stats: Omit<ClaimStats, "held"> = { won: 0, refused: 0, failed: 0, lost: 0 };

  private constructor(o: ClaimsOptions, kv: KV, ttlMs: number) {
    this.name = o.name;
    this.bucket = o.bucket ?? CLAIMS_BUCKET;
    this.kv = kv;
    this.ttlMs = ttlMs;
    this.renewMs = Math.max(100, Math.round(ttlMs / 3));
    this.opMs = Math.max(300, Math.min(5000, this.renewMs));
    this.log = o.log ?? silentLogger;
    this.timer = setInterval(() => void this.renewAll(), this.renewMs);
    this.timer.unref();
  }

  static async open(o: ClaimsOptions): Promise<Claims> {
    const bucket = o.bucket ?? CLAIMS_BUCKET;
    const ttl = o.ttlMs ?? DEFAULT_CLAIM_TTL_MS;
    const { kv, ttlMs } = await openBucket(o.nc, bucket, { ttlMs: ttl, replicas: o.replicas, apiPrefix: o.apiPrefix, timeoutMs: Math.max(500, Math.min(5000, Math.round(ttl / 3))) });
    if (ttlMs <= 0) throw new Error(`KV bucket ${bucket} has no TTL: the nodes of a crashed instance would stay claimed forever; recreate it with a TTL`);
    return new Claims(o, kv, ttlMs);
  }

  status(): ClaimStats {
    return { ...this.stats, held: this.held.size };
  }

  async claim(identity: string): Promise<boolean> {
    if (this.closed) return false;
    const key = claimKey(identity);
    try {
      const rev = await withDeadline(this.kv.create(key, this.name), this.opMs);
      this.held.set(identity, rev);
      this.stats.won++;
      return true;
    } catch (e) {
      if (!isWrongRevision(e)) return this.failed(identity, e);
    }
    try {
      // our own kept claim (the node came back in provisioning mode before it expired) is ours to reuse
      const cur = await withDeadline(this.kv.get(key), this.opMs);
      if (cur?.operation === "PUT" && cur.string() === this.name) {
        this.held.set(identity, await withDeadline(this.kv.update(key, this.name, cur.revision), this.opMs));
        this.stats.won++;
        return true;
      }
      this.log.debug({ identity, holder: cur?.string() }, "node claimed by another instance");
      this.stats.refused++;
      return false;
    } catch (e) {
      if (isWrongRevision(e)) {
        this.stats.refused++;
        return false;
      }
      return this.failed(identity, e);
    }
  }

  private failed(identity: string, e: unknown): false {
    // fail closed: never provision a node without holding its claim
    this.stats.failed++;
    this.log.warn({ identity, err: errorText(e) }, "could not claim node, skipping it");
    return false;
  }

  async release(identity: string, outcome: string): Promise<void> {
    // a renewal in flight would change the revision under the delete below
    if (this.renewing) await this.renewing;
    const rev = this.held.get(identity);
    this.held.delete(identity);
    if (rev === undefined || KEEP_AFTER.has(outcome)) return;
    try {
      await withDeadline(this.kv.delete(claimKey(identity), { previousSeq: rev }), this.opMs);
    } catch (e) {
      // it expires after the TTL anyway
      this.log.debug({ identity, err: errorText(e) }, "could not delete claim");
    }
  }

  private renewAll(): Promise<void> {
    if (this.renewing || this.closed) return this.renewing ?? Promise.resolve();
    this.renewing = (async () => {
      await Promise.all(
        [...this.held].map(async ([identity, rev]) => {
          try {
            const next = await withDeadline(this.kv.update(claimKey(identity), this.name, rev), this.opMs);
            // released meanwhile: do not resurrect
            if (this.held.get(identity) === rev) this.held.set(identity, next);
          } catch (e) {
            if (isWrongRevision(e) && this.held.get(identity) === rev) {
              this.held.delete(identity);
              this.stats.lost++;
              this.log.error({ identity }, "lost the claim of a node in flight (it expired while the broker was unreachable); another instance may provision it too");
            }
          }
        }),
      );
    })().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  /** Stops renewing and deletes the claims still held (nodes we will not finish), so others take them at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.renewing;
    await Promise.all([...this.held].map(([identity, rev]) => withDeadline(this.kv.delete(claimKey(identity), { previousSeq: rev }), this.opMs).catch(() => undefined)));
    this.held.clear();
  }
}
