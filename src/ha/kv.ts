/**
 * Small shared pieces for the HA modules: opening a KV bucket without changing an existing
 * one, recognising "someone else wrote first" errors, and a pino-compatible logger shape
 * (ha/ may import only transport/, so it cannot name pino's Logger type).
 */
import type { KV, NatsConnection } from "nats";

export interface HaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: HaLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface BucketOptions {
  /** TTL (max age) used only when the bucket does not exist yet */
  ttlMs: number;
  replicas?: number;
  /** JetStream API prefix; Choria Streams exposes JetStream to the provisioner as choria.streams */
  apiPrefix?: string;
  /** per KV request timeout */
  timeoutMs?: number;
}

export interface OpenedBucket {
  kv: KV;
  /** the bucket's real TTL: an existing bucket's TTL wins over the requested one */
  ttlMs: number;
}

/**
 * Opens (or creates) a KV bucket. nats.js only adds the stream when it is missing, so a bucket
 * made by the Choria broker or an operator (`nats kv add --ttl`) keeps its settings, exactly
 * as the reference reads the TTL from the bucket rather than imposing one.
 */
export async function openBucket(nc: NatsConnection, bucket: string, o: BucketOptions): Promise<OpenedBucket> {
  const js = nc.jetstream(jetStreamOptions(o.apiPrefix, o.timeoutMs));
  const kv = await js.views.kv(bucket, { ttl: o.ttlMs, history: 1, replicas: o.replicas ?? 1, ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}) });
  const st = await kv.status();
  return { kv, ttlMs: st.ttl };
}

/** JetStream client options for an API prefix (Choria Streams) and a request timeout */
export function jetStreamOptions(apiPrefix?: string, timeoutMs?: number): { apiPrefix?: string; timeout?: number; checkAPI?: boolean } {
  // nats.js rejects keys that are present but undefined, so only set what was given
  const jsOpts: { apiPrefix?: string; timeout?: number; checkAPI?: boolean } = {};
  if (apiPrefix) {
    jsOpts.apiPrefix = apiPrefix;
    // a Choria Broker exports only the election stream's INFO and the `provisioner` key to the
    // provisioning account, not the account INFO that nats.js checks first (it answers 503)
    jsOpts.checkAPI = false;
  }
  if (timeoutMs) jsOpts.timeout = timeoutMs;
  return jsOpts;
}

/**
 * True when a create/update/delete failed because the key's last revision was not the one
 * we expected: the definite "someone else holds it" answer, as opposed to a timeout or a
 * broker that is away, which says nothing about who holds the key.
 */
export function isWrongRevision(e: unknown): boolean {
  const err = e as { api_error?: { err_code?: number }; message?: string } | undefined;
  return err?.api_error?.err_code === 10071 || /wrong last sequence/i.test(err?.message ?? "");
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer from JetStream within ${ms}ms`);
    this.name = "DeadlineError";
  }
}

/**
 * Bounds a KV call by our own timer. nats.js applies the JetStream timeout to requests made
 * while connected, but a request issued during a reconnect waited the connection's 5 s
 * timeout in our tests: far beyond a 2 s lease, and a campaign stuck on it blocks the next.
 * A call abandoned here may still succeed later; callers are written so that is safe (the
 * elector re-takes a key that carries its own name, a claim expires).
 */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(ms)), ms);
  });
  p.catch(() => undefined); // an abandoned call's late failure is nobody's business
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
