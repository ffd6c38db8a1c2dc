/** Bytes -> text -> JSON with the codec's typed errors; shared by the v1 and v2 codecs. */
import { ProtocolError } from "./errors.js";

/** NATS' default max_payload; a Choria message larger than this cannot be legitimate here. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export interface DecodeOptions {
  maxBytes?: number;
}

export function parseJson(text: string, layer: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ProtocolError("not_json", layer, `not valid JSON (${(e as Error).message})`);
  }
}

/** The message as text, refusing anything over the size limit before it is decoded. */
export function toText(bytes: Uint8Array | string, o: DecodeOptions, layer = "transport"): string {
  const max = o.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const len = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (len > max) throw new ProtocolError("oversize", layer, `message of ${len} bytes exceeds the limit of ${max}`);
  return typeof bytes === "string" ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}
