/**
 * Running one RPC step of the per-node flow with the reference provisioner's semantics: a
 * step succeeds only on a reply with statuscode 0; otherwise it is retried with jittered
 * backoff up to its try count. Two cases end a step at once instead of retrying: the node's
 * provisioning lock held by another provisioner, a wrong token, and the broker's word that
 * nothing is subscribed for the node (no responders). Repeated timeouts end it
 * early too, because a dead node must not hold a worker for a minute.
 */
import { LOCK_HELD_MESSAGE, WRONG_TOKEN_MESSAGE, type RpcReplyBody } from "../protocol/index.js";
import { RpcCancelledError, RpcClosedError, RpcConnectionLostError, RpcNoRespondersError, RpcTimeoutError } from "../transport/errors.js";
import type { ReplyWatch } from "../transport/index.js";
import type { RpcCaller } from "./interfaces.js";

export class StepError extends Error {
  readonly step: string;
  /** lock: another provisioner holds the node's lock; token: our token is wrong; absent: nothing subscribed for the node; timeout; status; cancelled */
  readonly kind: "lock" | "token" | "absent" | "timeout" | "status" | "cancelled" | "transport";
  constructor(step: string, kind: StepError["kind"], message: string) {
    // no stack: a step error is an expected outcome told by its message, one per failed node
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${step}: ${message}`);
    Error.stackTraceLimit = limit;
    this.name = "StepError";
    this.step = step;
    this.kind = kind;
  }
}

export interface StepPolicy {
  tries: number;
  timeoutMs: number;
  /** give up after this many timeouts even if tries remain */
  maxTimeouts: number;
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export interface StepObserver {
  rpcTime(rpc: string, seconds: number): void;
  rpcError(rpc: string): void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function backoffMs(attempt: number, b: BackoffPolicy): number {
  const exp = Math.min(b.maxMs, b.baseMs * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/** connection losses one step rides out before they count as failed tries */
const MAX_LOST = 3;

export async function runStep<T>(
  rpc: RpcCaller,
  identity: string,
  agent: string,
  action: string,
  /**
   * a function is called once per request, right before it is sent: gen25519 needs a fresh nonce
   * for every request, and configure's audit line must be written before each one goes out
   */
  data: Record<string, unknown> | ((attempt: number) => Record<string, unknown> | Promise<Record<string, unknown>>),
  p: StepPolicy,
  b: BackoffPolicy,
  obs: StepObserver,
  signal?: AbortSignal,
  /** the node flow's reply watch (transport/reply-watch.ts) */
  watch?: ReplyWatch,
): Promise<RpcReplyBody<T>> {
  const label = `${agent}#${action}`;
  let timeouts = 0;
  let lost = 0;
  let last = "";
  for (let attempt = 0; attempt < p.tries; attempt++) {
    if (signal?.aborted) throw new StepError(label, "cancelled", "cancelled");
    if (attempt > 0) await sleep(backoffMs(attempt - 1, b), signal);
    let started = performance.now();
    try {
      let body: Record<string, unknown>;
      if (typeof data === "function") {
        body = await data(attempt);
        // the request's time, not the audit's
        started = performance.now();
      } else body = data;
      const r = await rpc.call<T>(identity, agent, action, body, { timeoutMs: p.timeoutMs, signal, watch });
      obs.rpcTime(label, (performance.now() - started) / 1000);
      if (r.statuscode === 0) return r;
      obs.rpcError(label);
      last = `status ${r.statuscode}: ${r.statusmsg}`;
      if (r.statusmsg.includes(LOCK_HELD_MESSAGE)) throw new StepError(label, "lock", r.statusmsg);
      if (r.statusmsg.includes(WRONG_TOKEN_MESSAGE)) throw new StepError(label, "token", r.statusmsg);
    } catch (e) {
      if (e instanceof StepError) throw e;
      obs.rpcError(label);
      if (e instanceof RpcCancelledError || e instanceof RpcClosedError) throw new StepError(label, "cancelled", e.message);
      // the broker knows nobody listens: trying again now cannot help (the retry schedule may, later)
      if (e instanceof RpcNoRespondersError) throw new StepError(label, "absent", e.message);
      // the reply went with a broker connection: ask again now, without using up a try
      if (e instanceof RpcConnectionLostError && lost++ < MAX_LOST) {
        attempt--;
        continue;
      }
      if (e instanceof RpcTimeoutError) {
        timeouts++;
        last = `no reply within ${p.timeoutMs}ms`;
        if (timeouts >= p.maxTimeouts) throw new StepError(label, "timeout", `${last} (${timeouts} times)`);
        continue;
      }
      last = (e as Error).message;
      if (attempt === p.tries - 1) throw new StepError(label, "transport", last);
    }
  }
  throw new StepError(label, last.startsWith("no reply") ? "timeout" : "status", `failed after ${p.tries} tries, last: ${last}`);
}
