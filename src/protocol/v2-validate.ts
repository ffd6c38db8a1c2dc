/**
 * Hand-written checks equivalent to the official v2 wire schemas (go-choria internal/fs/schemas/choria/protocol/v2),
 * in the same style as v1-validate.ts, with one deliberate difference: a reply's protocol must be
 * "io.choria.protocol.v2.reply" as Go writes it, not the schema's mistaken ".request" const.
 * Base64 fields are decoded by the codec, which reports bad_base64 separately.
 */
import { previewJson } from "../types/index.js";
import { ProtocolError } from "./errors.js";
import { checkFilterV1 } from "./v1-validate.js";
import { REPLY_V2, REQUEST_V2, SECURE_REPLY_V2, SECURE_REQUEST_V2, TRANSPORT_V2 } from "./v2-types.js";

type Obj = Record<string, unknown>;

/** The schemas' upper bound for nanosecond times (uint64 max); JS numbers reach it only approximately. */
const MAX_TIME = 18446744073709551615;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(layer: string, msg: string): never {
  throw new ProtocolError("schema", layer, msg);
}

function str(o: Obj, key: string, layer: string, minLength = 0): string {
  const v = o[key];
  if (typeof v !== "string") fail(layer, `${key} must be a string`);
  if (v.length < minLength) fail(layer, `${key} must be at least ${minLength} characters`);
  return v;
}

function optStr(o: Obj, key: string, layer: string, minLength = 0): void {
  if (o[key] !== undefined) str(o, key, layer, minLength);
}

function int(o: Obj, key: string, layer: string, minimum: number, maximum = Number.MAX_VALUE): void {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v)) fail(layer, `${key} must be an integer`);
  if (v < minimum) fail(layer, `${key} must be >= ${minimum}`);
  if (v > maximum) fail(layer, `${key} must be <= ${maximum}`);
}

function protocol(o: Obj, expected: string, layer: string): void {
  if (o.protocol !== expected) fail(layer, `protocol must be ${expected}, got ${previewJson(o.protocol)}`);
}

export function checkTransportV2(o: unknown): void {
  const layer = "transport";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, TRANSPORT_V2, layer);
  str(o, "data", layer);
  const h = o.headers;
  // Go dereferences headers; a missing or null object is not something a Go peer sends
  if (!isObj(h)) fail(layer, "headers must be an object");
  optStr(h, "reply", layer);
  optStr(h, "sender", layer, 1);
  if (h.trace !== undefined) {
    if (!Array.isArray(h.trace)) fail(layer, "headers.trace must be an array");
    for (const hop of h.trace) {
      if (!Array.isArray(hop) || hop.length > 3 || hop.some((x) => typeof x !== "string")) fail(layer, "headers.trace items must be [in, processor, out] string triples");
    }
  }
  if (h.federation !== undefined) {
    const f = h.federation;
    if (!isObj(f)) fail(layer, "headers.federation must be an object");
    str(f, "request", layer, 1);
    optStr(f, "reply", layer);
    if (f.targets !== undefined && (!Array.isArray(f.targets) || f.targets.some((x) => typeof x !== "string"))) fail(layer, "headers.federation.targets must be a list of strings");
  }
}

export function checkSecureRequestV2(o: unknown): void {
  const layer = "secure_request";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, SECURE_REQUEST_V2, layer);
  str(o, "request", layer, 1);
  str(o, "signature", layer, 1);
  str(o, "caller", layer, 1);
  optStr(o, "signer", layer);
}

export function checkRequestV2(o: unknown): void {
  const layer = "request";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, REQUEST_V2, layer);
  str(o, "message", layer, 1);
  str(o, "id", layer, 1);
  str(o, "sender", layer, 1);
  str(o, "caller", layer, 1);
  str(o, "collective", layer, 1);
  str(o, "agent", layer, 1);
  int(o, "ttl", layer, 1);
  int(o, "time", layer, 1, MAX_TIME);
  if (o.filter !== undefined) {
    try {
      checkFilterV1(o.filter, layer);
    } catch (e) {
      // v1's messages name the v1 location of the filter; v2 requests are flat
      if (e instanceof ProtocolError) fail(layer, e.message.replace(/^request: /, "").replace(/envelope\.filter/g, "filter"));
      throw e;
    }
  }
}

export function checkSecureReplyV2(o: unknown): void {
  const layer = "secure_reply";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, SECURE_REPLY_V2, layer);
  str(o, "reply", layer, 1);
  str(o, "hash", layer, 1);
  optStr(o, "signature", layer, 1);
  optStr(o, "sender", layer);
}

export function checkReplyV2(o: unknown): void {
  const layer = "reply";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, REPLY_V2, layer);
  str(o, "message", layer, 1);
  str(o, "request", layer, 1);
  str(o, "sender", layer, 1);
  str(o, "agent", layer, 1);
  int(o, "time", layer, 1, MAX_TIME);
}
