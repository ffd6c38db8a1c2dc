/**
 * Choria protocol v1 codec (§2): transport -> base64 secure request/reply -> JSON-in-string
 * request/reply -> payload. Pure: bytes in, typed documents out, ProtocolError for anything bad.
 */
import { previewJson } from "../types/index.js";
import { decodeStdBase64, encodeStdBase64 } from "./base64.js";
import { ProtocolError } from "./errors.js";
import { parseJson, toText, type DecodeOptions } from "./json.js";
import { agentFilter, type Filter } from "./filter.js";
import { newRequestId, replyHash, unixSeconds } from "./ids.js";
import { PROVISIONING_COLLECTIVE, replySubject } from "./subjects.js";
import {
  REPLY_V1,
  REQUEST_V1,
  SECURE_REPLY_V1,
  SECURE_REQUEST_V1,
  TRANSPORT_V1,
  type ReplyV1,
  type RequestV1,
  type SecureReplyV1,
  type SecureRequestV1,
  type SeenBy,
  type TransportHeadersV1,
  type TransportV1,
} from "./v1-types.js";
import { checkReplyV1, checkRequestV1, checkSecureReplyV1, checkSecureRequestV1, checkTransportV1 } from "./v1-validate.js";

export { DEFAULT_MAX_MESSAGE_BYTES, type DecodeOptions } from "./json.js";

export interface EncodeRequestOptions {
  agent: string;
  /** payload text: RPC body JSON, or "cGluZw==" for discovery */
  payload: string;
  callerid: string;
  senderid: string;
  collective?: string;
  ttl?: number;
  /** Unix seconds */
  time?: number;
  filter?: Filter;
  requestId?: string;
  /** defaults to provisioning.reply.<md5(callerid)>.<requestid>; "dev.null" for registration */
  replyTo?: string;
  /** broker URL for the seen-by header */
  connectedServer?: string;
  signature?: string;
  pubcert?: string;
  /**
   * Signs the request for a server with protocol security on (a node at home, not in
   * provisioning mode): returns the base64 signature of the exact request JSON text that goes
   * into the secure envelope. Takes precedence over `signature`.
   */
  sign?: (requestJson: string) => string;
}

/** What signs v1 requests for servers with protocol security on: a client certificate and its key. */
export interface RequestSigner {
  /** the client certificate, PEM: the server verifies it against its CA and the callerid */
  pubcert: string;
  /** base64 signature of the request JSON text (go-choria verifies RSA PKCS#1 v1.5 over SHA-256) */
  sign(requestJson: string): string;
}

export interface EncodedRequest {
  requestId: string;
  replyTo: string;
  bytes: Uint8Array;
  request: RequestV1;
}

// The transport document written straight into its bytes: its data field is base64 (nothing to
// escape), so serialising the document and then encoding it to UTF-8 copied the largest string
// of every message twice; it was a fifth of the provisioner's allocations per node.
const TRANSPORT_HEAD = `{"protocol":${JSON.stringify(TRANSPORT_V1)},"data":"`;

function transportBytes(secureJson: string, headers: TransportHeadersV1): Uint8Array {
  const data = encodeStdBase64(secureJson);
  const tail = `","headers":${JSON.stringify(headers)}}`;
  const out = Buffer.allocUnsafe(TRANSPORT_HEAD.length + data.length + Buffer.byteLength(tail, "utf8"));
  let at = out.write(TRANSPORT_HEAD, 0, "latin1");
  at += out.write(data, at, "latin1");
  out.write(tail, at, "utf8");
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function seenBy(server: string | undefined, identity: string): SeenBy[] {
  return [[server ?? "", identity, server ?? ""]];
}

export function encodeRequest(o: EncodeRequestOptions): EncodedRequest {
  const requestId = o.requestId ?? newRequestId();
  const collective = o.collective ?? PROVISIONING_COLLECTIVE;
  const replyTo = o.replyTo ?? replySubject(o.callerid, requestId, collective);
  const ttl = o.ttl ?? 60;
  if (!Number.isInteger(ttl) || ttl < 30) throw new RangeError(`ttl must be an integer >= 30, got ${ttl}`);
  const request: RequestV1 = {
    protocol: REQUEST_V1,
    message: o.payload,
    envelope: {
      requestid: requestId,
      senderid: o.senderid,
      callerid: o.callerid,
      collective,
      agent: o.agent,
      ttl,
      time: o.time ?? unixSeconds(),
      filter: o.filter ?? agentFilter(o.agent),
    },
  };
  const message = JSON.stringify(request);
  const secure: SecureRequestV1 = {
    protocol: SECURE_REQUEST_V1,
    message,
    signature: o.sign ? o.sign(message) : (o.signature ?? "insecure"),
    pubcert: o.pubcert ?? "insecure",
  };
  const headers: TransportHeadersV1 = { "reply-to": replyTo, mc_sender: o.senderid, "seen-by": seenBy(o.connectedServer, o.senderid) };
  return { requestId, replyTo, bytes: transportBytes(JSON.stringify(secure), headers), request };
}


/** Reads only the protocol marker, so callers can route v1 vs v2 before a full decode. */
export function transportProtocol(bytes: Uint8Array | string, o: DecodeOptions = {}): string {
  const t = parseJson(toText(bytes, o, "transport"), "transport");
  if (typeof t !== "object" || t === null || typeof (t as { protocol?: unknown }).protocol !== "string") {
    throw new ProtocolError("unknown_protocol", "transport", "no protocol field");
  }
  return (t as { protocol: string }).protocol;
}

function decodeTransport(bytes: Uint8Array | string, o: DecodeOptions): { transport: TransportV1; inner: unknown; innerLayer: string } {
  const t = parseJson(toText(bytes, o, "transport"), "transport") as Record<string, unknown>;
  if (typeof t !== "object" || t === null || Array.isArray(t)) throw new ProtocolError("schema", "transport", "must be a JSON object");
  if (t.protocol !== TRANSPORT_V1) throw new ProtocolError("unknown_protocol", "transport", `unsupported protocol ${previewJson(t.protocol)}`);
  checkTransportV1(t);
  const transport = t as unknown as TransportV1;
  const raw = decodeStdBase64(transport.data);
  if (!raw) throw new ProtocolError("bad_base64", "transport", "data is not standard base64");
  return { transport, inner: parseJson(raw.toString("utf8"), "secure"), innerLayer: "secure" };
}

export interface DecodedRequest {
  transport: TransportV1;
  secure: SecureRequestV1;
  request: RequestV1;
  /** request.message after the server's base64-or-raw rule (§2.6) */
  payload: Buffer;
  replyTo?: string;
}

/** Decodes a request as a provisioning-mode server does (§2.10 steps 1–5). */
export function decodeRequest(bytes: Uint8Array | string, o: DecodeOptions = {}): DecodedRequest {
  const { transport, inner } = decodeTransport(bytes, o);
  checkSecureRequestV1(inner);
  const secure = inner as SecureRequestV1;
  const req = parseJson(secure.message, "request");
  checkRequestV1(req);
  const request = req as RequestV1;
  const payload = decodeStdBase64(request.message) ?? Buffer.from(request.message, "utf8");
  return { transport, secure, request, payload, replyTo: transport.headers["reply-to"] || undefined };
}

export interface EncodeReplyOptions {
  requestId: string;
  agent: string;
  /** the replying server's identity */
  senderid: string;
  payload: string;
  time?: number;
  connectedServer?: string;
  federation?: TransportHeadersV1["federation"];
}

export function encodeReply(o: EncodeReplyOptions): Uint8Array {
  const reply: ReplyV1 = {
    protocol: REPLY_V1,
    message: o.payload,
    envelope: { requestid: o.requestId, senderid: o.senderid, agent: o.agent, time: o.time ?? unixSeconds() },
  };
  const message = JSON.stringify(reply);
  const secure: SecureReplyV1 = { protocol: SECURE_REPLY_V1, message, hash: replyHash(message) };
  const headers: TransportHeadersV1 = { mc_sender: o.senderid, "seen-by": seenBy(o.connectedServer, o.senderid) };
  if (o.federation) headers.federation = o.federation;
  return transportBytes(JSON.stringify(secure), headers);
}

export interface DecodedReply {
  transport: TransportV1;
  secure: SecureReplyV1;
  reply: ReplyV1;
  /** transport mc_sender: what broadcast discovery counts */
  sender: string;
}

/** Decodes a reply as a client does: the hash must match or the reply is discarded. */
export function decodeReply(bytes: Uint8Array | string, o: DecodeOptions = {}): DecodedReply {
  const { transport, inner } = decodeTransport(bytes, o);
  checkSecureReplyV1(inner);
  const secure = inner as SecureReplyV1;
  if (replyHash(secure.message) !== secure.hash) throw new ProtocolError("hash_mismatch", "secure_reply", "hash does not match the message");
  const r = parseJson(secure.message, "reply");
  checkReplyV1(r);
  const reply = r as ReplyV1;
  return { transport, secure, reply, sender: transport.headers.mc_sender ?? reply.envelope.senderid };
}

/**
 * The TTL window a server enforces (§2.10 step 8): strictly now-ttl < time < now+ttl, so the
 * tolerated clock skew equals the ttl.
 */
export function withinTtl(envelope: { ttl: number; time: number }, nowSeconds: number = unixSeconds()): boolean {
  return nowSeconds - envelope.ttl < envelope.time && envelope.time < nowSeconds + envelope.ttl;
}
