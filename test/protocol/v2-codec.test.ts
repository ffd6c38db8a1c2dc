import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign, verify } from "node:crypto";
import {
  DISCOVERY_PING_PAYLOAD,
  INSECURE_SIGNATURE_V2,
  ProtocolError,
  StatusCode,
  checkRequestV2,
  decodeRegistration,
  decodeReplyV2,
  decodeRequestV2,
  decodeRpcReply,
  decodeRpcRequest,
  encodeKsuid,
  encodeRegistration,
  encodeReplyV2,
  encodeRequest,
  encodeRequestV2,
  encodeRpcReply,
  encodeRpcRequest,
  ksuidSeconds,
  newKsuidV2,
  transportProtocol,
  unixNanos,
  withinTtlV2,
} from "../../src/protocol/index.js";
import { OFFICIAL_SKIP, assertOfficial, officialValidator } from "../helpers/wire-schemas.js";

const CALLER_JWT = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJwdXJwb3NlIjoiY2hvcmlhX2NsaWVudF9pZCJ9.c2ln";
const caller = { callerid: "choria=provisioner.example.net", senderid: "provisioner.example.net", callerJwt: CALLER_JWT };

function layers(bytes: Uint8Array) {
  const transport = JSON.parse(Buffer.from(bytes).toString());
  const secure = JSON.parse(Buffer.from(transport.data, "base64").toString());
  const inner = JSON.parse(Buffer.from(secure.request ?? secure.reply, "base64").toString());
  return { transport, secure, inner };
}

/** Re-encodes a transport after changing one layer, so only that layer is bad. */
function rebuild(bytes: Uint8Array, edit: (l: ReturnType<typeof layers>) => void, opts: { rehash?: boolean } = {}): string {
  const l = layers(bytes);
  edit(l);
  const innerJson = Buffer.from(JSON.stringify(l.inner));
  if (l.secure.request !== undefined) l.secure.request = innerJson.toString("base64");
  else {
    l.secure.reply = innerJson.toString("base64");
    if (opts.rehash !== false) l.secure.hash = sha256b64(innerJson);
  }
  l.transport.data = Buffer.from(JSON.stringify(l.secure)).toString("base64");
  return JSON.stringify(l.transport);
}

function sha256b64(b: Buffer): string {
  return createHash("sha256").update(b).digest("base64");
}

function expectProtocolError(fn: () => unknown, code: string, layer?: string, msg?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (layer) assert.equal(e.layer, layer);
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

test("every request kind validates against the official v2 schemas and round-trips", { skip: OFFICIAL_SKIP }, () => {
  const kinds = [
    { agent: "discovery", payload: DISCOVERY_PING_PAYLOAD },
    { agent: "rpcutil", payload: encodeRpcRequest("rpcutil", "inventory") },
    { agent: "choria_provision", payload: encodeRpcRequest("choria_provision", "gen25519", { nonce: newKsuidV2(), token: "t" }) },
    { agent: "choria_provision", payload: encodeRpcRequest("choria_provision", "configure", { config: JSON.stringify({ a: "b" }), server_jwt: "x.y.z", token: "" }) },
  ];
  const before = Date.now();
  for (const k of kinds) {
    const enc = encodeRequestV2({ ...caller, agent: k.agent, payload: k.payload });
    assert.equal(enc.requestId.length, 27);
    assert.ok(Math.abs(ksuidSeconds(enc.requestId)! - before / 1000) < 2);
    const { transport, secure, inner } = layers(enc.bytes);
    assertOfficial("v2", "transport", transport);
    assertOfficial("v2", "secure_request", secure);
    assertOfficial("v2", "request", inner);
    assert.deepEqual(Object.keys(transport.headers), ["reply", "sender", "trace"]);
    assert.deepEqual(Object.keys(inner), ["protocol", "message", "id", "sender", "caller", "collective", "agent", "ttl", "time", "filter"]);
    assert.equal(secure.signature, "aW5zZWN1cmU=");
    assert.equal(secure.caller, CALLER_JWT);
    assert.ok(inner.time >= before * 1e6 && inner.time <= (Date.now() + 1) * 1e6, "time is Unix nanoseconds");
    assert.match(JSON.stringify(inner), /"time":\d{19},/, "written as a plain 19-digit integer");
    const d = decodeRequestV2(enc.bytes);
    assert.deepEqual(d.request, enc.request);
    assert.equal(d.replyTo, enc.replyTo);
    assert.equal(d.signature.toString(), "insecure");
    assert.ok(enc.replyTo.startsWith("provisioning.reply."));
    assert.equal(d.body.toString(), k.payload);
    if (k.agent === "discovery") assert.equal(d.payload.toString(), "ping");
    else assert.deepEqual(decodeRpcRequest(d.payload), JSON.parse(k.payload));
    assert.equal(transportProtocol(enc.bytes), "io.choria.protocol.v2.transport");
  }
});

test("registration data from a v2 server: a v2 request the provisioner decodes like a v1 one", { skip: OFFICIAL_SKIP }, () => {
  for (const compress of [true, false]) {
    const bytes = encodeRegistration({ identity: "n2.example.net", file: "/etc/node/metadata.json", content: '{"dc":"fra1"}', mtime: 1700000000, compress, protocol: 2, callerJwt: CALLER_JWT });
    const { transport, secure, inner } = layers(bytes);
    assertOfficial("v2", "transport", transport);
    assertOfficial("v2", "secure_request", secure);
    assertOfficial("v2", "request", inner);
    assert.equal(inner.agent, "registration");
    const d = decodeRegistration(bytes);
    assert.equal(d.protocol, 2);
    assert.equal(d.identity, "n2.example.net");
    assert.equal(d.replyTo, "dev.null");
    assert.equal(d.content.toString(), '{"dc":"fra1"}');
  }
  const v1 = decodeRegistration(encodeRegistration({ identity: "n1.example.net", file: "/f", content: "{}", mtime: 1 }));
  assert.equal(v1.protocol, 1);
  assert.throws(() => encodeRegistration({ identity: "n2", file: "/f", content: "{}", mtime: 1, protocol: 2 }), /callerJwt/);
  // neither v1 nor v2: the error names the transport's protocol
  expectProtocolError(() => decodeRegistration(JSON.stringify({ protocol: "choria:transport:9", data: "", headers: {} })), "unknown_protocol", "transport");
});

test("replies validate (reply.json modulo its upstream protocol const bug), carry the hash and round-trip", { skip: OFFICIAL_SKIP }, () => {
  const bodies = [
    "pong",
    encodeRpcReply({ action: "inventory", statuscode: StatusCode.OK, statusmsg: "OK", data: { agents: ["rpcutil"] } }),
    encodeRpcReply({ action: "jwt", statuscode: StatusCode.Aborted, statusmsg: "Incorrect provision token supplied", data: {} }),
  ];
  for (const payload of bodies) {
    const id = newKsuidV2();
    const bytes = encodeReplyV2({ requestId: id, agent: "choria_provision", senderid: "n1.example.net", payload });
    const { transport, secure, inner } = layers(bytes);
    assertOfficial("v2", "transport", transport);
    assertOfficial("v2", "secure_reply", secure);
    assert.equal(inner.protocol, "io.choria.protocol.v2.reply", "what Go writes");
    // the official schema's const is io.choria.protocol.v2.request: everything else must pass
    assert.equal(officialValidator("v2", "reply")(inner), false);
    assertOfficial("v2", "reply", { ...inner, protocol: "io.choria.protocol.v2.request" });
    assert.deepEqual(Object.keys(inner), ["protocol", "message", "request", "sender", "agent", "time"]);
    assert.equal(secure.hash, createHash("sha256").update(Buffer.from(secure.reply, "base64")).digest("base64"));
    assert.equal(secure.signature, undefined);
    assert.deepEqual(transport.headers, { sender: "n1.example.net", trace: [["", "n1.example.net", ""]] });
    const d = decodeReplyV2(bytes);
    assert.equal(d.reply.request, id);
    assert.equal(d.sender, "n1.example.net");
    assert.equal(d.body.toString(), payload);
    if (payload !== "pong") assert.equal(decodeRpcReply(d.body.toString()).action, JSON.parse(payload).action);
  }
});

test("the signing hooks sign the exact inner bytes with ed25519", { skip: OFFICIAL_SKIP }, () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const enc = encodeRequestV2({ ...caller, agent: "rpcutil", payload: encodeRpcRequest("rpcutil", "inventory"), sign: (b) => sign(null, b, privateKey), signerJwt: "signer.jwt.x" });
  const { secure } = layers(enc.bytes);
  assertOfficial("v2", "secure_request", secure);
  assert.equal(secure.signer, "signer.jwt.x");
  const d = decodeRequestV2(enc.bytes);
  assert.equal(d.signature.length, 64);
  assert.ok(verify(null, d.requestBytes, publicKey, d.signature));
  const rep = encodeReplyV2({ requestId: enc.requestId, agent: "rpcutil", senderid: "n1", payload: "{}", sign: (b) => sign(null, b, privateKey), senderJwt: "server.jwt.x" });
  const r = decodeReplyV2(rep);
  assertOfficial("v2", "secure_reply", r.secure);
  assert.equal(r.secure.sender, "server.jwt.x");
  assert.ok(verify(null, r.replyBytes, publicKey, Buffer.from(r.secure.signature!, "base64")));
});

test("federation headers are copied onto replies and validate", { skip: OFFICIAL_SKIP }, () => {
  const bytes = encodeReplyV2({ requestId: "x", agent: "a", senderid: "n1", payload: "pong", federation: { request: "abc", reply: "r", targets: ["n1"] } });
  const { transport } = layers(bytes);
  assertOfficial("v2", "transport", transport);
  assert.deepEqual(decodeReplyV2(bytes).transport.headers.federation, { request: "abc", reply: "r", targets: ["n1"] });
});

test("bad input gives a typed ProtocolError naming the layer", () => {
  const enc = encodeRequestV2({ ...caller, agent: "rpcutil", payload: "{}" });
  const rep = encodeReplyV2({ requestId: enc.requestId, agent: "rpcutil", senderid: "n1", payload: "{}" });
  expectProtocolError(() => decodeRequestV2("{nope"), "not_json", "transport");
  expectProtocolError(() => decodeRequestV2(encodeRequest({ callerid: "c=x", senderid: "x", agent: "rpcutil", payload: "{}" }).bytes), "unknown_protocol", "transport");
  expectProtocolError(() => decodeRequestV2(enc.bytes, { maxBytes: 10 }), "oversize");
  const t = JSON.parse(Buffer.from(enc.bytes).toString());
  expectProtocolError(() => decodeRequestV2(JSON.stringify({ ...t, headers: null })), "schema", "transport", /headers/);
  expectProtocolError(() => decodeRequestV2(JSON.stringify({ ...t, data: "%%%" })), "bad_base64", "transport");
  expectProtocolError(() => decodeRequestV2(JSON.stringify({ ...t, data: Buffer.from("[1").toString("base64") })), "not_json", "secure");
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.secure.caller = ""))), "schema", "secure_request", /caller/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => delete l.secure.caller)), "schema", "secure_request", /caller/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.secure.signature = "not base64!"))), "bad_base64", "secure_request", /signature/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.inner.message = "{raw json}"))), "bad_base64", "request", /message/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.inner.time = 1.5))), "schema", "request", /time/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.inner.filter = { fact: [] }))), "schema", "request", /^request: filter\.cf_class is required$/);
  expectProtocolError(() => decodeRequestV2(rebuild(enc.bytes, (l) => (l.inner.protocol = "choria:request:1"))), "schema", "request");
  // replies
  expectProtocolError(() => decodeReplyV2(rebuild(rep, (l) => (l.inner.sender = "other"), { rehash: false })), "hash_mismatch", "secure_reply");
  expectProtocolError(() => decodeReplyV2(rebuild(rep, (l) => (l.inner.protocol = "io.choria.protocol.v2.request"))), "schema", "reply", /protocol/);
  expectProtocolError(() => decodeReplyV2(rebuild(rep, (l) => (l.inner.message = "{}"))), "bad_base64", "reply");
  expectProtocolError(() => decodeReplyV2(rebuild(rep, (l) => (l.secure.signature = "***"))), "bad_base64", "secure_reply");
  expectProtocolError(() => decodeReplyV2(rebuild(rep, (l) => (l.inner.sender = ""))), "schema", "reply");
  // a request is not a reply
  expectProtocolError(() => decodeReplyV2(enc.bytes), "schema", "secure_reply");
});

test("request checks agree with the official v2 schema on each rejected mutation", { skip: OFFICIAL_SKIP }, () => {
  const { inner } = layers(encodeRequestV2({ ...caller, agent: "rpcutil", payload: "{}" }).bytes);
  const mutations: Array<[string, (r: any) => void]> = [
    ["empty id", (r) => (r.id = "")],
    ["empty sender", (r) => (r.sender = "")],
    ["empty caller", (r) => (r.caller = "")],
    ["no collective", (r) => delete r.collective],
    ["ttl 0", (r) => (r.ttl = 0)],
    ["ttl string", (r) => (r.ttl = "60")],
    ["time 0", (r) => (r.time = 0)],
    ["empty message", (r) => (r.message = "")],
    ["filter without identity", (r) => delete r.filter.identity],
    ["bad fact operator", (r) => r.filter.fact.push({ fact: "a", operator: "~", value: "b" })],
    ["wrong protocol", (r) => (r.protocol = "io.choria.protocol.v2.reply")],
  ];
  const official = officialValidator("v2", "request");
  assert.ok(official(inner));
  assert.doesNotThrow(() => checkRequestV2(inner));
  for (const [name, mutate] of mutations) {
    const r = structuredClone(inner);
    mutate(r);
    assert.equal(official(r), false, `official schema should reject: ${name}`);
    assert.throws(() => checkRequestV2(r), ProtocolError, `checkRequestV2 should reject: ${name}`);
  }
  // filter is optional in v2 (omitempty)
  const nf = structuredClone(inner);
  delete nf.filter;
  assert.ok(official(nf));
  assert.doesNotThrow(() => checkRequestV2(nf));
});

test("the encoder refuses what a v2 peer would reject", () => {
  assert.throws(() => encodeRequestV2({ ...caller, callerJwt: "", agent: "a", payload: "{}" }), /callerJwt/);
  assert.throws(() => encodeRequestV2({ ...caller, agent: "a", payload: "" }), /payload/);
  assert.throws(() => encodeRequestV2({ ...caller, senderid: "", agent: "a", payload: "{}" }), /senderid/);
  assert.throws(() => encodeRequestV2({ ...caller, agent: "a", payload: "{}", ttl: 0 }), RangeError);
  assert.throws(() => encodeRequestV2({ ...caller, agent: "a", payload: "{}", time: 1.5 }), RangeError);
  assert.throws(() => encodeReplyV2({ requestId: "x", agent: "a", senderid: "n", payload: new Uint8Array() }), /payload/);
});

test("TTL window is strict on both sides, with nanosecond times", () => {
  const now = 1_800_000_000_000;
  const at = (offsetMs: number) => ({ ttl: 60, time: unixNanos(now + offsetMs) });
  assert.ok(withinTtlV2(at(0), now));
  assert.ok(withinTtlV2(at(-59_999), now));
  assert.ok(withinTtlV2(at(59_999), now));
  assert.ok(!withinTtlV2(at(-60_000), now));
  assert.ok(!withinTtlV2(at(60_000), now));
  // a seconds value (a v1 habit) is decades in the past
  assert.ok(!withinTtlV2({ ttl: 60, time: 1_800_000_000 }, now));
  // Go's exact nanoseconds, rounded by JSON.parse, still land correctly
  const goTime = JSON.parse('{"t":1800000000123456789}').t as number;
  assert.ok(withinTtlV2({ ttl: 1, time: goTime }, now + 500));
});

test("KSUIDs follow the segment.io format (reference vector)", () => {
  // from the segmentio/ksuid README: 0ujtsYcgvSTl8PAuAdqWYSMnLOv, timestamp 107608047
  assert.equal(encodeKsuid(Buffer.from("0669F7EFB5A1CD34B5F99D1154FB6853345C9735", "hex")), "0ujtsYcgvSTl8PAuAdqWYSMnLOv");
  assert.equal(ksuidSeconds("0ujtsYcgvSTl8PAuAdqWYSMnLOv"), 107608047 + 1_400_000_000);
  assert.equal(encodeKsuid(Buffer.alloc(20)), "000000000000000000000000000");
  assert.equal(encodeKsuid(Buffer.alloc(20, 0xff)), "aWgEPTl1tmebfsQzFP4bxwgy80V");
  assert.equal(ksuidSeconds("aWgEPTl1tmebfsQzFP4bxwgy80W"), undefined, "past the 160-bit maximum");
  assert.equal(ksuidSeconds("short"), undefined);
  const ids = new Set(Array.from({ length: 200 }, () => newKsuidV2()));
  assert.equal(ids.size, 200);
  for (const id of ids) assert.match(id, /^[0-9A-Za-z]{27}$/);
  assert.equal(INSECURE_SIGNATURE_V2, "aW5zZWN1cmU=");
});
