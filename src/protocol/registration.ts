/**
 * Registration data (§6.1): a full v1 request transport whose payload is a file_content
 * document, usually gzip-compressed. The provisioner only needs the sender identity from it,
 * but decoding the document proves it is what it claims to be.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { decodeStdBase64, encodeStdBase64 } from "./base64.js";
import { ProtocolError } from "./errors.js";
import { emptyFilter } from "./filter.js";
import { encodeRequest, decodeRequest, type DecodedRequest } from "./v1.js";

export interface FileContentDocument {
  mtime: number;
  file: string;
  updated: boolean;
  protocol: "choria:registration:filecontent:1";
  content?: string;
  zcontent?: string;
}

export function encodeRegistration(o: { identity: string; file: string; content: Uint8Array | string; mtime: number; updated?: boolean; compress?: boolean; connectedServer?: string }): Uint8Array {
  const raw = typeof o.content === "string" ? Buffer.from(o.content) : Buffer.from(o.content);
  const doc: FileContentDocument = { mtime: o.mtime, file: o.file, updated: o.updated ?? false, protocol: "choria:registration:filecontent:1" };
  if (o.compress === false) doc.content = encodeStdBase64(raw);
  else doc.zcontent = encodeStdBase64(gzipSync(raw));
  return encodeRequest({
    agent: "registration",
    payload: JSON.stringify(doc),
    callerid: `choria=${o.identity}`,
    senderid: o.identity,
    filter: emptyFilter(),
    replyTo: "dev.null",
    connectedServer: o.connectedServer,
  }).bytes;
}

export interface DecodedRegistration {
  identity: string;
  request: DecodedRequest;
  document: FileContentDocument;
  /** decompressed file bytes */
  content: Buffer;
}

export function decodeRegistration(bytes: Uint8Array | string, maxBytes?: number): DecodedRegistration {
  const request = decodeRequest(bytes, { maxBytes });
  const layer = "registration";
  const identity = request.request.envelope.senderid || request.transport.headers.mc_sender || "";
  if (!identity) throw new ProtocolError("schema", layer, "no sender identity");
  let doc: FileContentDocument;
  try {
    doc = JSON.parse(request.payload.toString("utf8")) as FileContentDocument;
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
  return { identity, request, document: doc, content };
}
