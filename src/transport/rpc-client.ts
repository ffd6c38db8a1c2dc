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
  type RpcReplyBody,
  PROVISION_AGENT,
} from "../protocol/index.js";
import { RpcCancelledError, RpcClosedError, RpcConnectionLostError, RpcNoRespondersError, RpcTimeoutError } from "./errors.js";
import { endOfTurnPublisher } from "./publish-batch.js";

export interface RpcClientOptions {
  nc: NatsConnection;
  /** our identity: envelope senderid and transport mc_sender */
  identity: string;
  /** default choria=<identity> */
  callerid?: string;
  collective?: string;
  ttlSec?: number;
  /** bad replies (hash mismatch, garbage) are dropped and reported here, for metrics */
  onInvalidReply?: (err: ProtocolError | Error) => void;
  /** replies from a node other than the one asked (a stray or spoofed reply) */
  onUnexpectedReply?: (expected: string, got: string) => void;
  /** Choria protocol version; default 1 */
  protocol?: 1 | 2;
  /** protocol 2: our client JWT, the `caller` of every secure request (required there) */
  callerJwt?: string;
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
}

interface Waiter {
  reply: (r: ReplyInfo) => void;
  /** settles the pending call when the client closes, so no caller waits for its timeout */
  close: () => void;
  /** the broker's 503 no-responders status: nothing is subscribed on the request's subject */
  absent?: () => void;
  /** the connection was lost while waiting: the reply will not come */
  lost?: () => void;
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
    return this.protocol === 2 ? encodeRequestV2({ ...common, callerJwt: this.o.callerJwt! }) : encodeRequest(common);
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
          this.o.onInvalidReply?.(e as Error);
          return;
        }
        if (decoded.requestId !== id) {
          this.o.onInvalidReply?.(new ProtocolError("schema", "reply", `reply for ${decoded.requestId} arrived on the subject of ${id}`));
          return;
        }
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
   * body as soon as that node replies, whatever its statuscode; the caller decides what a
   * non-zero status means. Rejects with RpcNoRespondersError when the broker says nothing is
   * subscribed on the node's subject.
   */
  call<T = Record<string, unknown>>(identity: string, agent: string, action: string, data: Record<string, unknown> = {}, o: CallOptions = {}): Promise<RpcReplyBody<T>> {
    this.ensureOpen();
    const timeoutMs = o.timeoutMs ?? 10_000;
    // the closures below keep only the request id: holding the whole encoded request (its
    // document and payload text) for the call's lifetime got it promoted to V8's old generation
    const { requestId, replyTo, bytes } = this.encode(agent, encodeRpcRequest(agent, action, data), agentFilter(agent));
    return new Promise<RpcReplyBody<T>>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new RpcCancelledError(`${agent}#${action} to ${identity}`));
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(requestId);
        unlisten?.();
      };
      const onAbort = (): void => {
        finish();
        reject(new RpcCancelledError(`${agent}#${action} to ${identity}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new RpcTimeoutError(identity, agent, action, timeoutMs));
      }, timeoutMs);
      const unlisten = o.signal ? this.onAbort(o.signal, onAbort) : undefined;
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
        reply: (r) => {
        if (r.sender !== identity) {
          this.o.onUnexpectedReply?.(identity, r.sender);
          return;
        }
        finish();
        try {
          resolve(decodeRpcReply<T>(r.message));
        } catch (e) {
          this.o.onInvalidReply?.(e as Error);
          reject(e);
        }
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
        reply: (r) => {
        if (r.message !== "pong") return;
        if (!found.has(r.sender)) {
          found.add(r.sender);
          o.onNode?.(r.sender);
        }
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
