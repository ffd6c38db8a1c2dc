/**
 * Choria protocol v2 codec (§3): transport -> base64 secure request/reply -> base64 request/reply
 * JSON -> base64 payload. Mirrors v1.ts: pure, bytes in and out, ProtocolError for bad input.
 * Signing is a hook (raw ed25519 signature bytes over the exact request/reply JSON bytes) so the
 * codec stays free of key handling; without it requests carry the insecure signature.
 */
import { createHash } from "node:crypto";
import { previewJson } from "../types/index.js";
import { decodeStdBase64, encodeStdBase64 } from "./base64.js";
import { ProtocolError } from "./errors.js";
import { agentFilter, type Filter } from "./filter.js";
import { PROVISIONING_COLLECTIVE, replySubject } from "./subjects.js";
import { parseJson, toText, type DecodeOptions } from "./json.js";
import type { SeenBy } from "./v1-types.js";
import { INSECURE_SIGNATURE_V2, newRequestIdV2, unixNanos } from "./v2-ids.js";
import {
  REPLY_V2,
  REQUEST_V2,
  SECURE_REPLY_V2,
  SECURE_REQUEST_V2,
  TRANSPORT_V2,
  type FederationHeadersV2,
  type ReplyV2,
  type RequestV2,
  type SecureReplyV2,
  type SecureRequestV2,
  type TransportHeadersV2,
  type TransportV2,
} from "./v2-types.js";
import { checkReplyV2, checkRequestV2, checkSecureReplyV2, checkSecureRequestV2, checkTransportV2 } from "./v2-validate.js";

const encoder = new TextEncoder();

/** Raw signature bytes over the exact JSON bytes that go into the secure envelope. */
export type SignBytes = (bytes: Buffer) => Uint8Array;

export interface EncodeRequestV2Options {
  agent: string;
  /** payload bytes: RPC body JSON, or "cGluZw==" for discovery (Go sends the same text as in v1) */
  payload: string | Uint8Array;
  callerid: string;
  senderid: string;
  /** the caller's client JWT: v2 secure requests must carry one */
  callerJwt: string;
  signerJwt?: string;
  collective?: string;
  ttl?: number;
  /** Unix nanoseconds */
  time?: number;
  filter?: Filter;
  requestId?: string;
  replyTo?: string;
  connectedServer?: string;
  /** signs the request JSON; absent means base64("insecure") */
  sign?: SignBytes;
}

export interface EncodedRequestV2 {
  requestId: string;
  replyTo: string;
  bytes: Uint8Array;
  request: RequestV2;
}

function toBytes(p: string | Uint8Array): Buffer {
  return typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

function trace(server: string | undefined, identity: string): SeenBy[] {
  return [[server ?? "", identity, server ?? ""]];
}

export function encodeRequestV2(o: EncodeRequestV2Options): EncodedRequestV2 {
  const requestId = o.requestId ?? newRequestIdV2();
  const collective = o.collective ?? PROVISIONING_COLLECTIVE;
  const replyTo = o.replyTo ?? replySubject(o.callerid, requestId, collective);
  const ttl = o.ttl ?? 60;
  if (!Number.isInteger(ttl) || ttl < 1) throw new RangeError(`ttl must be a positive integer, got ${ttl}`);
  const time = o.time ?? unixNanos();
  if (!Number.isInteger(time) || time < 1) throw new RangeError(`time must be positive integer nanoseconds, got ${time}`);
  if (!o.callerJwt) throw new RangeError("a v2 request needs the caller's JWT (callerJwt)");
  for (const [k, v] of [["agent", o.agent], ["senderid", o.senderid], ["callerid", o.callerid], ["collective", collective], ["requestId", requestId]] as const) {
    if (!v) throw new RangeError(`${k} must not be empty in a v2 request`);
  }
  const payload = toBytes(o.payload);
  if (payload.length === 0) throw new RangeError("a v2 request needs a non-empty payload");
  const request: RequestV2 = {
    protocol: REQUEST_V2,
    message: encodeStdBase64(payload),
    id: requestId,
    sender: o.senderid,
    caller: o.callerid,
    collective,
    agent: o.agent,
    ttl,
    time,
    filter: o.filter ?? agentFilter(o.agent),
  };
  const requestJson = Buffer.from(JSON.stringify(request), "utf8");
  const secure: SecureRequestV2 = {
    protocol: SECURE_REQUEST_V2,
    request: requestJson.toString("base64"),
    signature: o.sign ? encodeStdBase64(o.sign(requestJson)) : INSECURE_SIGNATURE_V2,
    caller: o.callerJwt,
  };
  if (o.signerJwt) secure.signer = o.signerJwt;
  const headers: TransportHeadersV2 = { reply: replyTo, sender: o.senderid, trace: trace(o.connectedServer, o.senderid) };
  const transport: TransportV2 = { protocol: TRANSPORT_V2, data: encodeStdBase64(JSON.stringify(secure)), headers };
  return { requestId, replyTo, bytes: encoder.encode(JSON.stringify(transport)), request };
}


/** Go unmarshals []byte fields with StdEncoding: anything else fails the whole message. */
function b64(s: string, layer: string, field: string): Buffer {
  const b = decodeStdBase64(s);
  if (!b) throw new ProtocolError("bad_base64", layer, `${field} is not standard base64`);
  return b;
}

function decodeTransportV2(bytes: Uint8Array | string, o: DecodeOptions): { transport: TransportV2; inner: unknown } {
  const t = parseJson(toText(bytes, o), "transport");
  if (typeof t !== "object" || t === null || Array.isArray(t)) throw new ProtocolError("schema", "transport", "must be a JSON object");
  const proto = (t as { protocol?: unknown }).protocol;
  // a v2 server rejects v1 transports and vice versa (§3): route on transportProtocol() first
  if (proto !== TRANSPORT_V2) throw new ProtocolError("unknown_protocol", "transport", `unsupported protocol ${previewJson(proto)}`);
  checkTransportV2(t);
  const transport = t as TransportV2;
  const raw = b64(transport.data, "transport", "data");
  return { transport, inner: parseJson(raw.toString("utf8"), "secure") };
}

export interface DecodedRequestV2 {
  transport: TransportV2;
  secure: SecureRequestV2;
  request: RequestV2;
  /** the exact request JSON bytes the signature covers */
  requestBytes: Buffer;
  /** raw signature bytes ("insecure" as bytes when unsigned) */
  signature: Buffer;
  /** request.message decoded: the bytes the client put in */
  body: Buffer;
  /** body after the server's base64-or-raw rule (§2.6): "cGluZw==" becomes "ping" */
  payload: Buffer;
  replyTo?: string;
}

/** Decodes a request as a provisioning-mode v2 server does; signatures are not checked here. */
export function decodeRequestV2(bytes: Uint8Array | string, o: DecodeOptions = {}): DecodedRequestV2 {
  const { transport, inner } = decodeTransportV2(bytes, o);
  checkSecureRequestV2(inner);
  const secure = inner as SecureRequestV2;
  const signature = b64(secure.signature, "secure_request", "signature");
  const requestBytes = b64(secure.request, "secure_request", "request");
  const req = parseJson(requestBytes.toString("utf8"), "request");
  checkRequestV2(req);
  const request = req as RequestV2;
  const body = b64(request.message, "request", "message");
  const payload = decodeStdBase64(body.toString("utf8")) ?? body;
  return { transport, secure, request, requestBytes, signature, body, payload, replyTo: transport.headers.reply || undefined };
}

export interface EncodeReplyV2Options {
  requestId: string;
  agent: string;
  /** the replying server's identity */
  senderid: string;
  payload: string | Uint8Array;
  /** Unix nanoseconds */
  time?: number;
  connectedServer?: string;
  federation?: FederationHeadersV2;
  /** for servers that sign replies: signature hook plus the server's JWT */
  sign?: SignBytes;
  senderJwt?: string;
}

export function encodeReplyV2(o: EncodeReplyV2Options): Uint8Array {
  const payload = toBytes(o.payload);
  if (payload.length === 0) throw new RangeError("a v2 reply needs a non-empty payload");
  const time = o.time ?? unixNanos();
  const reply: ReplyV2 = { protocol: REPLY_V2, message: encodeStdBase64(payload), request: o.requestId, sender: o.senderid, agent: o.agent, time };
  const replyJson = Buffer.from(JSON.stringify(reply), "utf8");
  const secure: SecureReplyV2 = { protocol: SECURE_REPLY_V2, reply: replyJson.toString("base64"), hash: createHash("sha256").update(replyJson).digest("base64") };
  if (o.sign) {
    secure.signature = encodeStdBase64(o.sign(replyJson));
    if (o.senderJwt) secure.sender = o.senderJwt;
  }
  const headers: TransportHeadersV2 = { sender: o.senderid, trace: trace(o.connectedServer, o.senderid) };
  if (o.federation) headers.federation = o.federation;
  const transport: TransportV2 = { protocol: TRANSPORT_V2, data: encodeStdBase64(JSON.stringify(secure)), headers };
  return encoder.encode(JSON.stringify(transport));
}

export interface DecodedReplyV2 {
  transport: TransportV2;
  secure: SecureReplyV2;
  reply: ReplyV2;
  /** the exact reply JSON bytes the hash (and any signature) covers */
  replyBytes: Buffer;
  /** reply.message decoded: the RPC reply JSON, or "pong" */
  body: Buffer;
  /** transport sender header: what broadcast discovery counts */
  sender: string;
}

/** Decodes a reply as a client does: the hash must match the reply bytes or it is discarded. */
export function decodeReplyV2(bytes: Uint8Array | string, o: DecodeOptions = {}): DecodedReplyV2 {
  const { transport, inner } = decodeTransportV2(bytes, o);
  checkSecureReplyV2(inner);
  const secure = inner as SecureReplyV2;
  const replyBytes = b64(secure.reply, "secure_reply", "reply");
  if (secure.signature !== undefined) b64(secure.signature, "secure_reply", "signature");
  if (createHash("sha256").update(replyBytes).digest("base64") !== secure.hash) throw new ProtocolError("hash_mismatch", "secure_reply", "hash does not match the reply");
  const r = parseJson(replyBytes.toString("utf8"), "reply");
  checkReplyV2(r);
  const reply = r as ReplyV2;
  const body = b64(reply.message, "reply", "message");
  return { transport, secure, reply, replyBytes, body, sender: transport.headers.sender ?? reply.sender };
}

/**
 * The TTL window a server enforces (message.ValidateTTL): strictly now-ttl < time < now+ttl,
 * with time in nanoseconds here. Compared in milliseconds, far finer than any TTL.
 */
export function withinTtlV2(request: { ttl: number; time: number }, nowMs: number = Date.now()): boolean {
  const t = request.time / 1_000_000;
  return nowMs - request.ttl * 1000 < t && t < nowMs + request.ttl * 1000;
}
