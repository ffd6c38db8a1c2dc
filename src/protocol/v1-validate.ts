/**
 * Hand-written checks equivalent to the official v1 wire schemas (draft-04, see
 * go-choria internal/fs/schemas/choria/protocol/v1). They run on every message the simulator receives and every
 * reply the provisioner reads, so they are plain code rather than a generic validator; the
 * test suite proves they accept and reject what the official schemas do.
 */
import { FACT_OPERATORS } from "./filter.js";
import { previewJson } from "../types/index.js";
import { ProtocolError } from "./errors.js";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(layer: string, msg: string): never {
  throw new ProtocolError("schema", layer, msg);
}

function str(o: Obj, key: string, layer: string, minLength = 0, maxLength = Infinity): string {
  const v = o[key];
  if (typeof v !== "string") fail(layer, `${key} must be a string`);
  if (v.length < minLength) fail(layer, `${key} must be at least ${minLength} characters`);
  if (v.length > maxLength) fail(layer, `${key} must be at most ${maxLength} characters`);
  return v;
}

function int(o: Obj, key: string, layer: string, minimum?: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v)) fail(layer, `${key} must be an integer`);
  if (minimum !== undefined && v < minimum) fail(layer, `${key} must be >= ${minimum}`);
  return v;
}

function stringArray(o: Obj, key: string, layer: string, required: boolean): void {
  const v = o[key];
  if (v === undefined && !required) return;
  if (!Array.isArray(v)) fail(layer, `${key} must be an array`);
  for (const x of v) if (typeof x !== "string") fail(layer, `${key} items must be strings`);
}

function protocol(o: Obj, expected: string, layer: string): void {
  if (o.protocol !== expected) fail(layer, `protocol must be ${expected}, got ${previewJson(o.protocol)}`);
}

export function checkTransportV1(o: unknown): void {
  const layer = "transport";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, "choria:transport:1", layer);
  str(o, "data", layer);
  const h = o.headers;
  if (!isObj(h)) fail(layer, "headers must be an object");
  if (h["reply-to"] !== undefined) str(h, "reply-to", layer, 1);
  if (h.mc_sender !== undefined) str(h, "mc_sender", layer, 1);
  if (h["seen-by"] !== undefined && !Array.isArray(h["seen-by"])) fail(layer, "seen-by must be an array");
  if (h.federation !== undefined && !isObj(h.federation)) fail(layer, "federation must be an object");
}

export function checkSecureRequestV1(o: unknown): void {
  const layer = "secure_request";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, "choria:secure:request:1", layer);
  str(o, "message", layer, 1);
  str(o, "signature", layer, 1);
  str(o, "pubcert", layer, 1);
}

export function checkFilterV1(f: unknown, layer: string): void {
  if (!isObj(f)) fail(layer, "envelope.filter must be an object");
  for (const k of ["fact", "cf_class", "identity", "compound"]) if (f[k] === undefined) fail(layer, `envelope.filter.${k} is required`);
  if (!Array.isArray(f.fact)) fail(layer, "envelope.filter.fact must be an array");
  for (const ff of f.fact) {
    if (!isObj(ff)) fail(layer, "envelope.filter.fact items must be objects");
    str(ff, "fact", layer, 1);
    if (!FACT_OPERATORS.includes(ff.operator as never)) fail(layer, `envelope.filter.fact operator ${previewJson(ff.operator)} is not one of ${FACT_OPERATORS.join(" ")}`);
    str(ff, "value", layer, 1);
  }
  stringArray(f, "cf_class", layer, true);
  stringArray(f, "identity", layer, true);
  stringArray(f, "agent", layer, false);
  if (!Array.isArray(f.compound)) fail(layer, "envelope.filter.compound must be an array");
  for (const c of f.compound) {
    if (!Array.isArray(c)) fail(layer, "envelope.filter.compound items must be arrays");
    for (const x of c) if (!isObj(x)) fail(layer, "envelope.filter.compound entries must be objects");
  }
}

export function checkRequestV1(o: unknown): void {
  const layer = "request";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, "choria:request:1", layer);
  str(o, "message", layer, 1);
  const e = o.envelope;
  if (!isObj(e)) fail(layer, "envelope must be an object");
  str(e, "requestid", layer, 32, 32);
  str(e, "senderid", layer);
  str(e, "callerid", layer, 1);
  str(e, "collective", layer, 1);
  str(e, "agent", layer, 1);
  int(e, "ttl", layer, 30);
  int(e, "time", layer);
  checkFilterV1(e.filter, layer);
}

export function checkSecureReplyV1(o: unknown): void {
  const layer = "secure_reply";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, "choria:secure:reply:1", layer);
  str(o, "message", layer, 1);
  str(o, "hash", layer, 1);
}

export function checkReplyV1(o: unknown): void {
  const layer = "reply";
  if (!isObj(o)) fail(layer, "must be an object");
  protocol(o, "choria:reply:1", layer);
  str(o, "message", layer, 1);
  const e = o.envelope;
  if (!isObj(e)) fail(layer, "envelope must be an object");
  str(e, "requestid", layer, 32, 32);
  str(e, "senderid", layer);
  str(e, "agent", layer, 1);
  int(e, "time", layer);
}
