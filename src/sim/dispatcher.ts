/**
 * The request pipeline of a provisioning-mode server (§2.10), shared by every node of the
 * fleet: decode, schema, filter, collective, TTL window, agent lookup, then the agent. Every
 * failure before the agent is silent on the wire, exactly as in Go, and counted here as a
 * violation by kind, so a provisioner bug is visible even though nothing answered it.
 *
 * A fleet speaks one protocol version (§3): v1 (x509/file security) or v2 (ed25519+jwt). Like
 * the real server it rejects the other version's messages without a reply ("requires a x509 /
 * ed25519+jwt based security system"); the simulator counts them as wrong_protocol.
 */
import {
  ProtocolError,
  PROVISIONING_COLLECTIVE,
  TRANSPORT_V1,
  TRANSPORT_V2,
  decodeRequest,
  decodeRequestV2,
  encodeReply,
  encodeReplyV2,
  encodeRpcReply,
  filterMatches,
  transportProtocol,
  withinTtl,
  withinTtlV2,
  type FederationHeadersV2,
  type Filter,
  type FilterTarget,
  type TransportHeadersV1,
  PROVISION_ACTION,
  PROVISION_AGENT,
  RPCUTIL_AGENT,
} from "../protocol/index.js";
import { checkLock, isLockedAction, PROVISION_ACTIONS, runProvisionAction } from "./agents/choria-provision.js";
import { RPCUTIL_ACTIONS, runRpcutilAction } from "./agents/rpcutil.js";
import { hasFault } from "./faults.js";
import { decodeGoStruct, GoJsonError, goSyntaxError } from "./gojson.js";
import { Mode, type SimNode } from "./node.js";
import { draw, rngFor } from "./prng.js";
import { encodeWithRaw } from "./raw-json.js";
import { AGENT_TIMEOUT_S, LOADED_AGENTS, invalidData, type ActionResult, type EnvelopeInfo, type SimRuntime } from "./runtime.js";

export interface ReplySink {
  /** publish on the node's own connection */
  publish(node: SimNode, subject: string, bytes: Uint8Array): void;
  /** broker URL the node is connected to, for seen-by */
  connectedServer(node: SimNode): string;
}

export interface DispatchOptions {
  latencyMs?: [number, number];
  dropProbability?: number;
}

/** Violation kind for a message the decoder rejected. */
export function rejectKind(e: unknown): string {
  if (!(e instanceof ProtocolError)) return "garbage";
  if (e.code === "oversize") return "oversize";
  if (e.code === "bad_base64") return "bad_base64";
  if (e.layer === "transport") return "garbage";
  if (e.layer === "secure" || e.layer === "secure_request") return "bad_secure_request";
  if (e.layer === "request" && e.code === "schema") {
    if (e.message.includes("requestid")) return "bad_request_id";
    if (e.message.includes("filter")) return "bad_filter";
    if (e.message.includes("ttl")) return "bad_ttl";
    if (e.message.includes("time")) return "bad_time";
  }
  return "bad_request";
}

/** A decoded request, whichever protocol version carried it: what the pipeline below needs. */
export interface IncomingRequest {
  version: 1 | 2;
  requestid: string;
  senderid: string;
  callerid: string;
  collective: string;
  agent: string;
  /** v2 may omit it (Go's omitempty): then it matches every node */
  filter?: Filter;
  ttl: number;
  /** Unix seconds (v1) or nanoseconds (v2) */
  time: number;
  payload: Buffer;
  replyTo?: string;
  federation?: TransportHeadersV1["federation"] | FederationHeadersV2;
}

/** Decodes for a server of `version`; a message of the other version throws like any bad one. */
export function decodeIncoming(data: Uint8Array, version: 1 | 2): IncomingRequest {
  if (version === 2) {
    const r = decodeRequestV2(data);
    const q = r.request;
    return { version, requestid: q.id, senderid: q.sender, callerid: q.caller, collective: q.collective, agent: q.agent, filter: q.filter, ttl: q.ttl, time: q.time, payload: r.payload, replyTo: r.replyTo, federation: r.transport.headers.federation };
  }
  const r = decodeRequest(data);
  const e = r.request.envelope;
  return { version, requestid: e.requestid, senderid: e.senderid, callerid: e.callerid, collective: e.collective, agent: e.agent, filter: e.filter, ttl: e.ttl, time: e.time, payload: r.payload, replyTo: r.replyTo, federation: r.transport.headers.federation };
}

/** The violation for a message a server of `version` could not decode. */
function rejectFor(e: unknown, data: Uint8Array, version: 1 | 2): { kind: string; detail: string } {
  if (e instanceof ProtocolError && e.code === "unknown_protocol") {
    let proto = "";
    try {
      proto = transportProtocol(data);
    } catch {
      // not even a protocol field: plain garbage
    }
    const other = version === 1 ? TRANSPORT_V2 : TRANSPORT_V1;
    if (proto === other) {
      const needs = version === 1 ? "a x509" : "an ed25519+jwt";
      return { kind: "wrong_protocol", detail: `${proto} message sent to a protocol v${version} server, which requires ${needs} based security system and drops it` };
    }
  }
  return { kind: rejectKind(e), detail: (e as Error).message };
}

const RPC_REQUEST = {
  name: "Request",
  qualified: "mcorpc.Request",
  fields: { agent: "string", action: "string", requestid: "string", senderid: "string", callerid: "string", collective: "string", ttl: "int", msgtime: "int" },
} as const;

/** parseIncomingMessage: the SimpleRPC body as Go unmarshals it; a string is the error text */
export function parseRpcBody(payload: Buffer): { agent: string; action: string; data: unknown } | string {
  const text = payload.toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return goSyntaxError(text);
  }
  try {
    const f = decodeGoStruct({ ...RPC_REQUEST, fields: { ...RPC_REQUEST.fields } }, body);
    let data: unknown = {};
    if (body && typeof body === "object") {
      const src = body as Record<string, unknown>;
      const key = "data" in src ? "data" : Object.keys(src).find((k) => k.toLowerCase() === "data");
      if (key !== undefined && src[key] !== null) data = src[key];
    }
    return { agent: f.agent as string, action: f.action as string, data };
  } catch (e) {
    if (e instanceof GoJsonError) return e.message;
    throw e;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Dispatcher {
  private readonly rt: SimRuntime;
  private readonly sink: ReplySink;
  private readonly byIdentity: Map<string, SimNode>;
  private readonly o: DispatchOptions;

  constructor(rt: SimRuntime, sink: ReplySink, byIdentity: Map<string, SimNode>, o: DispatchOptions = {}) {
    this.rt = rt;
    this.sink = sink;
    this.byIdentity = byIdentity;
    this.o = o;
  }

  /** a message on provisioning.node.<identity>; false when no such server is listening */
  directed(identity: string, data: Uint8Array): boolean {
    const node = this.byIdentity.get(identity);
    if (!node || !node.listening) {
      // no such server is subscribed: the broker would not even deliver it
      this.rt.stats.totals.toAbsentNodes++;
      return false;
    }
    let req: IncomingRequest;
    try {
      req = decodeIncoming(data, this.rt.protocol);
    } catch (e) {
      const r = rejectFor(e, data, this.rt.protocol);
      this.rt.stats.violation(node, r.kind, r.detail);
      return true;
    }
    if (!this.filterOk(node, req)) {
      this.rt.stats.violation(node, "filter_mismatch", `filter ${JSON.stringify(req.filter)} does not match ${node.identity}`);
      return true;
    }
    const env = this.envelopeProblem(req);
    if (env) {
      this.rt.stats.violation(node, env.kind, env.detail);
      return true;
    }
    this.deliver(node, req);
    return true;
  }

  /**
   * A broadcast request, delivered to every listening node in `nodes` (one connection's share).
   * Only one shard counts violations for it, so a bad broadcast is one violation, not one per shard.
   */
  broadcast(nodes: readonly SimNode[], data: Uint8Array, countViolations: boolean): void {
    let req: IncomingRequest;
    try {
      req = decodeIncoming(data, this.rt.protocol);
    } catch (e) {
      if (countViolations) {
        const r = rejectFor(e, data, this.rt.protocol);
        this.rt.stats.violation(undefined, r.kind, r.detail);
      }
      return;
    }
    const env = this.envelopeProblem(req);
    if (env) {
      if (countViolations) this.rt.stats.violation(undefined, env.kind, env.detail);
      return;
    }
    // a big fleet answers a discovery with tens of thousands of replies: yield between batches
    let i = 0;
    const step = (): void => {
      const end = Math.min(nodes.length, i + 2000);
      for (; i < end; i++) {
        const node = nodes[i];
        // a filter excluding nodes is what broadcast filters are for: not a violation
        if (node.listening && this.filterOk(node, req)) this.deliver(node, req);
      }
      if (i < nodes.length) setImmediate(step);
    };
    step();
  }

  private filterOk(node: SimNode, req: IncomingRequest): boolean {
    if (!req.filter) return true;
    const rt = this.rt;
    const target: FilterTarget = {
      identity: node.identity,
      agents: LOADED_AGENTS,
      classes: [],
      get facts() {
        return rt.factsOf(node);
      },
    };
    return filterMatches(req.filter, target);
  }

  /** collective and TTL window: the same for every node, so broadcasts check them once */
  private envelopeProblem(e: IncomingRequest): { kind: string; detail: string } | undefined {
    if (e.collective !== PROVISIONING_COLLECTIVE) return { kind: "wrong_collective", detail: `collective ${JSON.stringify(e.collective)} is not ${PROVISIONING_COLLECTIVE}` };
    if (!(e.version === 2 ? withinTtlV2(e) : withinTtl(e))) return { kind: "ttl_window", detail: `time ${e.time} with ttl ${e.ttl} is outside the window around ${e.version === 2 ? `${Date.now()}ms` : Math.floor(Date.now() / 1000)}` };
    return undefined;
  }

  private deliver(node: SimNode, req: IncomingRequest): void {
    const agent = req.agent;
    if (!LOADED_AGENTS.includes(agent)) {
      this.rt.stats.violation(node, "unknown_agent", `agent ${JSON.stringify(agent)} is not loaded`);
      return;
    }
    void this.handle(node, req, agent).catch((e: unknown) => {
      this.rt.stats.violation(node, "simulator_error", (e as Error).stack ?? String(e));
    });
  }

  private latencyFor(node: SimNode, seq: number): number {
    const range = this.o.latencyMs;
    if (!range || !hasFault(node.faults, "latency")) return 0;
    const [lo, hi] = range;
    return lo + Math.floor(rngFor(this.rt.seed, `latency:${seq}`, node.identity)() * (hi - lo + 1));
  }

  private async handle(node: SimNode, req: IncomingRequest, agent: string): Promise<void> {
    const rt = this.rt;
    const boot = node.boot;
    const seq = node.replySeq++;
    const latency = this.latencyFor(node, seq);
    const env: EnvelopeInfo = { requestid: req.requestid, senderid: req.senderid, callerid: req.callerid };

    if (agent === "discovery") {
      rt.stats.request("discovery", "ping", node);
      if (!req.payload.includes("ping")) {
        rt.stats.violation(node, "discovery_not_ping", `discovery payload ${JSON.stringify(req.payload.toString("latin1").slice(0, 40))} does not contain ping`);
        return;
      }
      if (latency) await sleep(latency);
      if (this.reply(node, req, agent, "pong", latency, seq)) rt.stats.replied(node, "discovery", "ping");
      return;
    }

    const body = parseRpcBody(req.payload);
    let result: ActionResult;
    let action = "";
    if (typeof body === "string") {
      rt.stats.violation(node, "invalid_data", `body: ${body}`);
      result = invalidData(`Could not process request: could not parse incoming message as a MCollective SimpleRPC Request: ${body}`);
      if (latency) await sleep(latency);
    } else {
      action = body.action;
      const actions = agent === PROVISION_AGENT ? PROVISION_ACTIONS : agent === RPCUTIL_AGENT ? RPCUTIL_ACTIONS : [];
      rt.stats.request(agent, action, node);
      if (!actions.includes(action)) {
        rt.stats.violation(node, "unknown_action", `${agent}#${action}`);
        result = { statuscode: 2, statusmsg: `Unknown action ${action} for agent ${agent}`, data: {} };
        if (latency) await sleep(latency);
      } else if (agent === PROVISION_AGENT && action === PROVISION_ACTION.restart && hasFault(node.faults, "lose_first_restart") && !node.restartLost) {
        // the request never reached the server: it neither answers nor restarts
        node.restartLost = true;
        rt.stats.totals.droppedByFault++;
        rt.stats.changed();
        return;
      } else if (agent === PROVISION_AGENT) {
        const locked = isLockedAction(action) ? checkLock(rt, node, env) : undefined;
        if (locked) {
          result = locked;
          if (latency) await sleep(latency);
        } else {
          result = await this.withAgentMutex(node, async () => {
            if (latency) await sleep(latency);
            // the process that took this request crashed meanwhile: the new one never saw it
            if (node.boot !== boot) return { statuscode: 0, statusmsg: "", data: {}, noReply: true };
            return runProvisionAction(rt, node, action, body.data, env, body.agent);
          });
          if (result.noReply && (node.mode === Mode.Restarting || node.mode === Mode.ShuttingDown)) rt.stats.totals.unansweredWhileRestarting++;
        }
      } else {
        if (latency) await sleep(latency);
        result = runRpcutilAction(rt, node, action, body.data, body.agent);
      }
    }
    if (node.boot !== boot) return;
    if (!result.noReply && this.reply(node, req, agent, encodeWithRaw(() => encodeRpcReply({ action, statuscode: result.statuscode, statusmsg: result.statusmsg, data: result.data })), latency, seq)) rt.stats.replied(node, agent, action);
    result.after?.();
  }

  /** Go's package-level mutex in the provision agent: one action at a time per server */
  private async withAgentMutex(node: SimNode, fn: () => Promise<ActionResult>): Promise<ActionResult> {
    const prev = node.provisionTail;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    node.provisionTail = mine;
    try {
      if (prev) await prev;
      return await fn();
    } finally {
      release();
      if (node.provisionTail === mine) node.provisionTail = undefined;
    }
  }

  /** publishes the reply unless the node would not answer; true when it was sent */
  private reply(node: SimNode, req: IncomingRequest, agent: string, payload: string, latency: number, seq: number): boolean {
    const rt = this.rt;
    // the process was replaced or died while this request was in flight
    if (!node.listening) return false;
    if (latency >= (AGENT_TIMEOUT_S[agent] ?? 20) * 1000) {
      rt.stats.totals.agentTimeouts++;
      return false;
    }
    if (hasFault(node.faults, "drop") && draw(rt.seed, `drop:${seq}`, node.identity) < (this.o.dropProbability ?? 1)) {
      rt.stats.totals.droppedByFault++;
      rt.stats.changed();
      return false;
    }
    if (!req.replyTo) {
      rt.stats.violation(node, "no_reply_to", `request ${req.requestid} has no reply-to header`);
      return false;
    }
    const common = { requestId: req.requestid, agent, senderid: node.identity, payload, connectedServer: this.sink.connectedServer(node) };
    // a provisioning-mode v2 server turns protocol security off and does not sign its replies (§3)
    const bytes =
      req.version === 2
        ? encodeReplyV2({ ...common, federation: req.federation as FederationHeadersV2 | undefined })
        : encodeReply({ ...common, federation: req.federation as TransportHeadersV1["federation"] });
    this.sink.publish(node, req.replyTo, bytes);
    rt.stats.totals.replies++;
    return true;
  }
}
