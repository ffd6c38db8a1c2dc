/**
 * A JetStream KV bucket of JSON records, one per node identity, mirrored in memory by a watch
 * so reads are local and every instance sees every other instance's writes. The approval store
 * (provision/approvals.ts) lives here under HA, so nodes waiting for an operator survive a
 * restart and a handover and are listed by every instance. No TTL: a waiting node waits until
 * an operator acts. ha/ knows nothing of the records' shape beyond their identity.
 */
import type { KV, NatsConnection } from "nats";
import { claimKey, identityOfClaimKey } from "./claims.js";
import { errorText, openBucket, silentLogger, withDeadline, type HaLogger } from "./kv.js";

export const APPROVALS_BUCKET = "CHORIA_PROVISIONER_APPROVALS";

export interface KvRecordsOptions {
  nc: NatsConnection;
  bucket?: string;
  replicas?: number;
  apiPrefix?: string;
  log?: HaLogger;
  /** bound on each KV call */
  timeoutMs?: number;
}

export class KvRecords<T extends { identity: string }> {
  private readonly mirror = new Map<string, T>();
  private readonly listeners: Array<(identity: string, v: T | undefined) => void> = [];
  private stopWatch?: () => void;

  private constructor(
    private readonly kv: KV,
    readonly bucket: string,
    private readonly opMs: number,
    private readonly log: HaLogger,
  ) {}

  /** opens the bucket and resolves once the mirror holds every record already stored */
  static async open<T extends { identity: string }>(o: KvRecordsOptions): Promise<KvRecords<T>> {
    const bucket = o.bucket ?? APPROVALS_BUCKET;
    const opMs = o.timeoutMs ?? 5000;
    const { kv } = await openBucket(o.nc, bucket, { ttlMs: 0, replicas: o.replicas, apiPrefix: o.apiPrefix, timeoutMs: opMs });
    const r = new KvRecords<T>(kv, bucket, opMs, o.log ?? silentLogger);
    await r.watch();
    return r;
  }

  private async watch(): Promise<void> {
    let initialised!: () => void;
    const ready = new Promise<void>((resolve) => (initialised = resolve));
    const iter = await this.kv.watch({ initializedFn: () => initialised() });
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        const identity = identityOfClaimKey(e.key);
        if (e.operation === "DEL" || e.operation === "PURGE") {
          if (this.mirror.delete(identity)) this.changed(identity, undefined);
          continue;
        }
        try {
          const v = e.json<T>();
          this.mirror.set(identity, v);
          this.changed(identity, v);
        } catch (err) {
          // someone wrote a value we cannot read into our bucket: name it, keep watching
          this.log.warn({ bucket: this.bucket, key: e.key, err: errorText(err) }, "unreadable record in KV bucket ignored");
        }
      }
    })();
    await ready;
  }

  private changed(identity: string, v: T | undefined): void {
    for (const l of this.listeners) l(identity, v);
  }

  /** writes the record; the watch (ours too) updates every mirror */
  async put(v: T): Promise<void> {
    await withDeadline(this.kv.put(claimKey(v.identity), JSON.stringify(v)), this.opMs);
    // our own mirror at once, so a read right after the write sees it
    this.mirror.set(v.identity, v);
    this.changed(v.identity, v);
  }

  async delete(identity: string): Promise<void> {
    await withDeadline(this.kv.delete(claimKey(identity)), this.opMs);
    if (this.mirror.delete(identity)) this.changed(identity, undefined);
  }

  get(identity: string): T | undefined {
    return this.mirror.get(identity);
  }

  all(): Iterable<T> {
    return this.mirror.values();
  }

  onChange(cb: (identity: string, v: T | undefined) => void): void {
    this.listeners.push(cb);
  }

  async close(): Promise<void> {
    this.stopWatch?.();
  }
}
