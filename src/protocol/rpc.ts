/** SimpleRPC bodies carried inside request/reply messages (§2.6, §2.8). */
import { ProtocolError } from "./errors.js";

export enum StatusCode {
  OK = 0,
  Aborted = 1,
  UnknownAction = 2,
  MissingData = 3,
  InvalidData = 4,
  UnknownError = 5,
}

export interface RpcRequestBody {
  agent: string;
  action: string;
  data: Record<string, unknown>;
}

export interface RpcReplyBody<T = Record<string, unknown>> {
  action: string;
  statuscode: StatusCode;
  statusmsg: string;
  data: T;
}

/** base64 of "ping": raw "ping" happens to be valid base64 and would decode to garbage (§2.6). */
export const DISCOVERY_PING_PAYLOAD = "cGluZw==";

export function encodeRpcRequest(agent: string, action: string, data: Record<string, unknown> = {}): string {
  return JSON.stringify({ agent, action, data });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses the payload as the Go server does; bad bodies are InvalidData replies, not drops. */
export function decodeRpcRequest(payload: Buffer | string): RpcRequestBody {
  let body: unknown;
  try {
    body = JSON.parse(typeof payload === "string" ? payload : payload.toString("utf8"));
  } catch (e) {
    throw new ProtocolError("bad_payload", "rpc", `could not parse incoming message as a MCollective SimpleRPC Request: ${(e as Error).message}`);
  }
  if (!isObj(body)) throw new ProtocolError("bad_payload", "rpc", "could not parse incoming message as a MCollective SimpleRPC Request: not an object");
  const agent = typeof body.agent === "string" ? body.agent : "";
  const action = typeof body.action === "string" ? body.action : "";
  if (body.data !== undefined && body.data !== null && !isObj(body.data)) {
    throw new ProtocolError("bad_payload", "rpc", "could not parse incoming message as a MCollective SimpleRPC Request: data is not an object");
  }
  return { agent, action, data: isObj(body.data) ? body.data : {} };
}

export function encodeRpcReply<T>(body: RpcReplyBody<T>): string {
  return JSON.stringify({ action: body.action, statuscode: body.statuscode, statusmsg: body.statusmsg, data: body.data });
}

export function decodeRpcReply<T = Record<string, unknown>>(message: string): RpcReplyBody<T> {
  let body: unknown;
  try {
    body = JSON.parse(message);
  } catch (e) {
    throw new ProtocolError("bad_payload", "rpc", `reply is not JSON: ${(e as Error).message}`);
  }
  if (!isObj(body)) throw new ProtocolError("bad_payload", "rpc", "reply is not an object");
  if (typeof body.statuscode !== "number" || !Number.isInteger(body.statuscode)) throw new ProtocolError("bad_payload", "rpc", "reply statuscode is not an integer");
  return {
    action: typeof body.action === "string" ? body.action : "",
    statuscode: body.statuscode,
    statusmsg: typeof body.statusmsg === "string" ? body.statusmsg : "",
    data: (isObj(body.data) ? body.data : {}) as T,
  };
}
