/**
 * Registration data (§6.1): a full request transport whose payload is a file_content document,
 * usually gzip-compressed. The server makes it with the same NewMessage as any request, so a
 * server speaking protocol v2 sends a v2 request (go-choria server/registration). The provisioner
 * only needs the sender identity from it, but decoding the document proves it is what it claims
 * to be.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { decodeStdBase64, encodeStdBase64 } from "./base64.js";
import { ProtocolError } from "./errors.js";
import { emptyFilter } from "./filter.js";
import { encodeRequest, decodeRequest, type DecodedRequest } from "./v1.js";
import { decodeRequestV2, encodeRequestV2, type DecodedRequestV2 } from "./v2.js";

export interface FileContentDocument {
  mtime: number;
  file: string;
  updated: boolean;
  protocol: "choria:registration:filecontent:1";
  content?: string;
  zcontent?: string;
}

export interface EncodeRegistrationOptions {
  identity: string;
  file: string;
  content: Uint8Array | string;
  mtime: number;
  updated?: boolean;
  compress?: boolean;
  connectedServer?: string;
  /** protocol version of the request (default 1) */
  protocol?: 1 | 2;
  /** v2 only: the JWT the request carries as its caller (a provisioning-mode server has its provisioning JWT) */
  callerJwt?: string;
}

export function encodeRegistration(o: EncodeRegistrationOptions): Uint8Array {
  const raw = typeof o.content === "string" ? Buffer.from(o.content) : Buffer.from(o.content);
  const doc: FileContentDocument = { mtime: o.mtime, file: o.file, updated: o.updated ?? false, protocol: "choria:registration:filecontent:1" };
  if (o.compress === false) doc.content = encodeStdBase64(raw);
  else doc.zcontent = encodeStdBase64(gzipSync(raw));
  const common = { agent: "registration", payload: JSON.stringify(doc), callerid: `choria=${o.identity}`, senderid: o.identity, filter: emptyFilter(), replyTo: "dev.null", connectedServer: o.connectedServer };
  if (o.protocol === 2) {
    if (!o.callerJwt) throw new RangeError("a v2 registration needs the server's JWT (callerJwt)");
    return encodeRequestV2({ ...common, callerJwt: o.callerJwt }).bytes;
  }
  return encodeRequest(common).bytes;
}

export interface DecodedRegistration {
  identity: string;
  /** protocol version of the request it came in */
  protocol: 1 | 2;
  request: DecodedRequest | DecodedRequestV2;
  /** the request's reply-to: "dev.null" from a server */
  replyTo?: string;
  document: FileContentDocument;
  /** decompressed file bytes */
  content: Buffer;
}

// v1 first (most fleets); a transport that is not v1 gets the v2 decoder, whose error stands if it is neither
function decodeEither(bytes: Uint8Array | string, maxBytes?: number): { protocol: 1 | 2; request: DecodedRequest | DecodedRequestV2; identity: string; payload: Buffer; replyTo?: string } {
  try {
    const r = decodeRequest(bytes, { maxBytes });
    return { protocol: 1, request: r, identity: r.request.envelope.senderid || r.transport.headers.mc_sender || "", payload: r.payload, replyTo: r.replyTo };
  } catch (e) {
    if (!(e instanceof ProtocolError && e.code === "unknown_protocol" && e.layer === "transport")) throw e;
  }
  const r = decodeRequestV2(bytes, { maxBytes });
  return { protocol: 2, request: r, identity: r.request.sender || r.transport.headers.sender || "", payload: r.payload, replyTo: r.replyTo };
}

export function decodeRegistration(bytes: Uint8Array | string, maxBytes?: number): DecodedRegistration {
  const { protocol, request, identity, payload, replyTo } = decodeEither(bytes, maxBytes);
  const layer = "registration";
  if (!identity) throw new ProtocolError("schema", layer, "no sender identity");
  let doc: FileContentDocument;
  try {
    doc = JSON.parse(payload.toString("utf8")) as FileContentDocument;
  } catch (e) {
    throw new ProtocolError("not_json", layer, `file_content document is not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || doc.protocol !== "choria:registration:filecontent:1") {
    throw new ProtocolError("unknown_protocol", layer, "not a choria:registration:filecontent:1 document");
  }
  let content: Buffer = Buffer.alloc(0);
  if (typeof doc.zcontent === "string" && doc.zcontent !== "") {
    const z = decodeStdBase64(doc.zcontent);
    if (!z) throw new ProtocolError("bad_base64", layer, "zcontent is not base64");
    try {
      content = gunzipSync(z, { maxOutputLength: 4 * 1024 * 1024 });
    } catch (e) {
      throw new ProtocolError("bad_payload", layer, `zcontent is not valid gzip (${(e as Error).message})`);
    }
  } else if (typeof doc.content === "string") {
    const c = decodeStdBase64(doc.content);
    if (!c) throw new ProtocolError("bad_base64", layer, "content is not base64");
    content = c;
  }
  return { identity, protocol, request, replyTo, document: doc, content };
}
