/**
 * Choria RPC client for the provisioning collective. One wildcard subscription on
 * provisioning.reply.<md5(callerid)>.> carries every reply; a map from request id to
 * waiter routes them, so thousands of concurrent directed requests cost no subscriptions.
 * senderid and callerid stay constant for the client's life because the server's
 * provisioning lock is keyed on them (§4.1). A client speaks one protocol version, v1 or v2
 * (§3): a node accepts exactly one, tied to its security provider, so mixing makes no sense.
 */
import type { NatsConnection, Subscription } from "nats";
import {
  DISCOVERY_PING_PAYLOAD,
  PROVISIONING_COLLECTIVE,
  ProtocolError,
  agentFilter,
  broadcastSubject,
  decodeReply,
  decodeReplyV2,
  decodeRpcReply,
  encodeRequest,
  encodeRequestV2,
  encodeRpcRequest,
  nodeSubject,
  replyPrefix,
  type Filter,
  type RequestSigner,
  type RpcReplyBody,
  PROVISION_AGENT,
} from "../protocol/index.js";
import { RpcCancelledError, RpcClosedError, RpcConnectionLostError, RpcNoRespondersError, RpcTimeoutError } from "./errors.js";
import type { RejectReason, RejectedReply, ReplyWatch } from "./reply-watch.js";
import { endOfTurnPublisher } from "./publish-batch.js";

export interface RpcClientOptions {
  nc: NatsConnection;
  /** our identity: envelope senderid and transport mc_sender */
  identity: string;
  /** default choria=<identity> */
  callerid?: string;
  collective?: string;
  ttlSec?: number;
  /**
   * a reply that could not be decoded or failed the checks (hash, request id, sender, RPC body):
   * dropped, the call goes on waiting for a valid one, and it is reported here against the node
   * it claims to be from, so a forged reply is visible
   */
  onRejectedReply?: (r: RejectedReply) => void;
  /** Choria protocol version; default 1 */
  protocol?: 1 | 2;
  /** protocol 2: our client JWT, the `caller` of every secure request (required there) */
  callerJwt?: string;
  /** protocol 1: signs every request, for servers outside provisioning mode (protocol security on) */
  signer?: RequestSigner;
}

/** What the client needs of a reply, whichever protocol carried it. */
interface ReplyInfo {
  requestId: string;
  /** transport sender: the replying node's identity */
  sender: string;
  /** the RPC reply JSON, or "pong" */
  message: string;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** the node flow's watch: the request stays routed to it after the call resolves (reply-watch.ts) */
  watch?: ReplyWatch;
}

export interface DiscoverOptions {
  /** overall limit; default 2000 ms like Go */
  timeoutMs?: number;
  /** sliding window: stop this long after the last reply; default 300 ms */
  quietMs?: number;
  filter?: Filter;
  signal?: AbortSignal;
  /** called for each new identity as it arrives */
  onNode?: (identity: string) => void;
  /** a second pong from an identity already seen in this discovery: two servers answer as one */
  onDuplicate?: (identity: string) => void;
}

interface Waiter {
  reply: (r: ReplyInfo) => void;
  /** a reply on this request's subject that could not be decoded or was for another request */
  reject: (reason: RejectReason, detail: string) => void;
  /** settles the pending call when the client closes, so no caller waits for its timeout */
  close: () => void;
  /** the broker's 503 no-responders status: nothing is subscribed on the request's subject */
  absent?: () => void;
  /** the connection was lost while waiting: the reply will not come */
  lost?: () => void;
}

/** why a reply is not the node's answer; made only for a reply that fails, so a valid one costs no object */
class ReplyRejection {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {}
}

/**
 * The checks every reply to a request gets, before the call is answered and after (a second
 * reply): it comes from the node asked, and its body decodes. One place, so both see the same rules.
 */
function checkReply<T>(r: ReplyInfo, identity: string): RpcReplyBody<T> | ReplyRejection {
  if (r.sender !== identity) return new ReplyRejection("wrong_sender", `reply names ${JSON.stringify(r.sender)} as its sender`);
  try {
    return decodeRpcReply<T>(r.message);
  } catch (e) {
    return new ReplyRejection("bad_body", (e as Error).message);
  }
}

/**
 * What stays routed to a node flow's watch once a request has its valid reply, until the flow
 * ends: only what telling a second reply needs. Made here, not in call(), so it keeps none of the
 * call's closures, its settled promise or the reply body the promise holds: kept by the call's
 * own waiter for the flow's life, those were promoted to V8's old generation for every request
 * (bench/README.md, "Where the daemon's GC goes").
 */
function answeredWaiter(identity: string, step: string, first: string, watch: ReplyWatch, onRejectedReply?: (r: RejectedReply) => void): Waiter {
  const rejected = (reason: RejectReason, detail: string): void => {
    onRejectedReply?.({ identity, step, reason, detail });
    watch.rejected({ step, reason }, true);
  };
  return {
    reject: rejected,
    // the call is settled: a client closing, a no-responders status or a lost connection change nothing for it
    close: () => undefined,
    reply: (r) => {
      const checked = checkReply(r, identity);
      if (checked instanceof ReplyRejection) return rejected(checked.reason, checked.detail);
      // core NATS delivers a message once per subscription: a second reply has a second sender
      watch.conflicted({ step, kind: "second_reply", detail: r.message === first ? "a second reply with the same body" : "a second reply with a different body" });
    },
  };
}

/** the watch's end for one request: a closure of its own, so it holds the map and the id only */
function untrack(waiters: Map<string, Waiter>, requestId: string): () => void {
  return () => void waiters.delete(requestId);
}

/** A status-only message (no payload) with code 503: what nats-server sends for a request nobody can receive. */
function isNoResponders(msg: { data: Uint8Array; headers?: { code: number } }): boolean {
  return msg.data.length === 0 && msg.headers?.code === 503;
}

export class RpcClient {
  readonly identity: string;
  readonly callerid: string;
  readonly collective: string;
  readonly protocol: 1 | 2;
  private readonly nc: NatsConnection;
  private readonly ttl: number;
  private readonly waiters = new Map<string, Waiter>();
  private sub?: Subscription;
  private closed = false;
  private readonly o: RpcClientOptions;

  constructor(o: RpcClientOptions) {
    this.o = o;
    this.nc = o.nc;
    this.identity = o.identity;
    this.callerid = o.callerid ?? `choria=${o.identity}`;
    this.collective = o.collective ?? PROVISIONING_COLLECTIVE;
    this.ttl = o.ttlSec ?? 60;
    this.protocol = o.protocol ?? 1;
    if (this.protocol === 2 && !o.callerJwt) throw new RangeError("protocol 2 needs the client's JWT (callerJwt): v2 requests must name their caller");
  }

  private encode(agent: string, payload: string, filter: Filter): { requestId: string; replyTo: string; bytes: Uint8Array } {
    const common = { agent, payload, callerid: this.callerid, senderid: this.identity, collective: this.collective, ttl: this.ttl, filter };
    if (this.protocol === 2) return encodeRequestV2({ ...common, callerJwt: this.o.callerJwt! });
    const signer = this.o.signer;
    return encodeRequest(signer ? { ...common, pubcert: signer.pubcert, sign: signer.sign } : common);
  }

  private decode(data: Uint8Array): ReplyInfo {
    if (this.protocol === 2) {
      const r = decodeReplyV2(data);
      return { requestId: r.reply.request, sender: r.sender, message: r.body.toString("utf8") };
    }
    const r = decodeReply(data);
    return { requestId: r.reply.envelope.requestid, sender: r.sender, message: r.reply.message };
  }

  /** number of requests waiting for replies */
  get inFlight(): number {
    return this.waiters.size;
  }

  start(): void {
    if (this.sub) return;
    this.sub = this.nc.subscribe(`${replyPrefix(this.callerid, this.collective)}.>`, {
      callback: (err, msg) => {
        if (err) return;
        const id = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
        const waiter = this.waiters.get(id);
        if (!waiter) return; // late reply for a finished request
        if (isNoResponders(msg)) return waiter.absent?.();
        let decoded: ReplyInfo;
        try {
          decoded = this.decode(msg.data);
        } catch (e) {
          return waiter.reject("undecodable", (e as Error).message);
        }
        if (decoded.requestId !== id) return waiter.reject("request_mismatch", new ProtocolError("schema", "reply", `reply for ${decoded.requestId} arrived on the subject of ${id}`).message);
        waiter.reply(decoded);
      },
    });
  }

  // directed requests go out at the end of the turn, together (see publish-batch.ts)
  private readonly publishSoon = endOfTurnPublisher();

  // One "abort" listener per signal rather than one per call: a node's calls share its signal,
  // and node's EventTarget add/remove are not cheap (bench/README.md), four calls a node.
  private readonly aborters = new WeakMap<AbortSignal, Set<() => void>>();

  private onAbort(signal: AbortSignal, fn: () => void): () => void {
    let fns = this.aborters.get(signal);
    if (!fns) {
      const set = new Set<() => void>();
      this.aborters.set(signal, set);
      signal.addEventListener("abort", () => {
        for (const f of [...set]) f();
        set.clear();
      }, { once: true });
      fns = set;
    }
    const mine = fns;
    mine.add(fn);
    return () => void mine.delete(fn);
  }

  private ensureOpen(): void {
    if (this.closed) throw new RpcClosedError();
    if (!this.sub) this.start();
  }

  /**
   * Directed request to one node (provisioning.node.<identity>). Resolves with the RPC reply
   * body as soon as that node gives a valid reply, whatever its statuscode; the caller decides
   * what a non-zero status means. Replies that fail the checks are reported and skipped. With
   * `o.watch` the request stays routed to the watch after that, so a second reply is seen.
   * Rejects with RpcNoRespondersError when the broker says nothing is subscribed on the node's
   * subject.
   */
  call<T = Record<string, unknown>>(identity: string, agent: string, action: string, data: Record<string, unknown> = {}, o: CallOptions = {}): Promise<RpcReplyBody<T>> {
    this.ensureOpen();
    const timeoutMs = o.timeoutMs ?? 10_000;
    const step = `${agent}#${action}`;
    const watch = o.watch;
    // the closures below keep only the request id: holding the whole encoded request (its
    // document and payload text) for the call's lifetime got it promoted to V8's old generation
    const { requestId, replyTo, bytes } = this.encode(agent, encodeRpcRequest(agent, action, data), agentFilter(agent));
    return new Promise<RpcReplyBody<T>>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new RpcCancelledError(`${step} to ${identity}`));
      // the first valid reply takes this waiter out of the map (answeredWaiter watches on), so
      // nothing below runs for an answered call
      let rejects = 0;
      const settle = (): void => {
        clearTimeout(timer);
        unlisten?.();
      };
      const finish = (): void => {
        settle();
        this.waiters.delete(requestId);
      };
      const onAbort = (): void => {
        finish();
        reject(new RpcCancelledError(`${step} to ${identity}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new RpcTimeoutError(identity, agent, action, timeoutMs));
      }, timeoutMs);
      const unlisten = o.signal ? this.onAbort(o.signal, onAbort) : undefined;
      const rejected = (reason: RejectReason, detail: string): void => {
        rejects++;
        this.o.onRejectedReply?.({ identity, step, reason, detail });
        watch?.rejected({ step, reason }, false);
      };
      this.waiters.set(requestId, {
        close: () => {
          finish();
          reject(new RpcClosedError());
        },
        absent: () => {
          finish();
          reject(new RpcNoRespondersError(identity, agent, action));
        },
        lost: () => {
          finish();
          reject(new RpcConnectionLostError(`${agent}#${action} to ${identity}`));
        },
        reject: rejected,
        reply: (r) => {
          const body = checkReply<T>(r, identity);
          if (body instanceof ReplyRejection) return rejected(body.reason, body.detail);
          if (rejects > 0) watch?.conflicted({ step, kind: "invalid_and_valid", detail: `a valid reply besides ${rejects} that failed the checks` });
          settle();
          if (watch?.track(untrack(this.waiters, requestId))) this.waiters.set(requestId, answeredWaiter(identity, step, r.message, watch, this.o.onRejectedReply));
          else this.waiters.delete(requestId);
          resolve(body);
        },
      });
      // the NATS reply subject is the Choria reply-to too: a node that is not subscribed costs
      // one round trip (the broker's 503) instead of a timeout per try
      this.publishSoon(this.nc, nodeSubject(identity, this.collective), bytes, (e) => {
        finish();
        reject(e);
      }, replyTo);
    });
  }

  /**
   * Broadcast discovery (§2.11): a ping on <collective>.broadcast.agent.discovery; identities
   * come from each reply's mc_sender. Ends timeoutMs after start, or quietMs after the latest
   * reply once replies have begun.
   */
  discover(o: DiscoverOptions = {}): Promise<string[]> {
    this.ensureOpen();
    const timeoutMs = o.timeoutMs ?? 2000;
    const quietMs = o.quietMs ?? 300;
    const enc = this.encode("discovery", DISCOVERY_PING_PAYLOAD, o.filter ?? agentFilter(PROVISION_AGENT));
    const found = new Set<string>();
    return new Promise<string[]>((resolve) => {
      let quiet: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(overall);
        if (quiet) clearTimeout(quiet);
        this.waiters.delete(enc.requestId);
        o.signal?.removeEventListener("abort", done);
        resolve([...found]);
      };
      const overall = setTimeout(done, timeoutMs);
      o.signal?.addEventListener("abort", done, { once: true });
      this.waiters.set(enc.requestId, {
        close: done,
        reject: (reason, detail) => this.o.onRejectedReply?.({ identity: "", step: "discovery#ping", reason, detail }),
        reply: (r) => {
        if (r.message !== "pong") return this.o.onRejectedReply?.({ identity: r.sender, step: "discovery#ping", reason: "not_pong", detail: "a discovery reply that is not pong" });
        if (!found.has(r.sender)) {
          found.add(r.sender);
          o.onNode?.(r.sender);
        } else o.onDuplicate?.(r.sender);
        if (quiet) quiet.refresh();
        else quiet = setTimeout(done, quietMs);
      },
      });
      this.nc.publish(broadcastSubject("discovery", this.collective), enc.bytes);
    });
  }

  /**
   * The connection came back after a disconnect: replies to requests pending across it were lost
   * with the old connection, so those calls fail now (callers retry at once) instead of waiting
   * out their timeouts, which are tens of seconds for the provisioning actions.
   */
  reconnected(): number {
    let n = 0;
    for (const w of [...this.waiters.values()]) {
      if (!w.lost) continue;
      w.lost();
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sub?.unsubscribe();
    for (const w of [...this.waiters.values()]) w.close();
    this.waiters.clear();
  }
}
