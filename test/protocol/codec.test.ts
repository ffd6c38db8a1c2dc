import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DISCOVERY_PING_PAYLOAD,
  ProtocolError,
  StatusCode,
  checkRequestV1,
  decodeLifecycle,
  decodeRegistration,
  decodeReply,
  decodeRequest,
  decodeRpcReply,
  decodeRpcRequest,
  decodeStdBase64,
  encodeLifecycle,
  encodeRegistration,
  encodeReply,
  encodeRequest,
  encodeRpcReply,
  encodeRpcRequest,
  filterMatches,
  newLifecycleEvent,
  newRequestId,
  emptyFilter,
} from "../../src/protocol/index.js";
import { OFFICIAL_SKIP, assertOfficial, officialValidator } from "../helpers/wire-schemas.js";

const caller = { callerid: "choria=provisioner.example.net", senderid: "provisioner.example.net" };

function layers(bytes: Uint8Array) {
  const transport = JSON.parse(Buffer.from(bytes).toString());
  const secure = JSON.parse(Buffer.from(transport.data, "base64").toString());
  const inner = JSON.parse(secure.message);
  return { transport, secure, inner };
}

function expectProtocolError(fn: () => unknown, code: string, layer?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (layer) assert.equal(e.layer, layer);
    return true;
  });
}

test("every request kind the codec produces validates against the official v1 schemas and round-trips", { skip: OFFICIAL_SKIP }, () => {
  const kinds = [
    { agent: "discovery", payload: DISCOVERY_PING_PAYLOAD },
    { agent: "rpcutil", payload: encodeRpcRequest("rpcutil", "inventory") },
    { agent: "choria_provision", payload: encodeRpcRequest("choria_provision", "gencsr", { cn: "n1.example.net", token: "t" }) },
    { agent: "choria_provision", payload: encodeRpcRequest("choria_provision", "configure", { config: JSON.stringify({ a: "b" }), token: "" }) },
    { agent: "choria_provision", payload: encodeRpcRequest("choria_provision", "restart", { splay: 1, token: "" }) },
  ];
  for (const k of kinds) {
    const enc = encodeRequest({ ...caller, agent: k.agent, payload: k.payload });
    assert.equal(enc.requestId.length, 32);
    assert.match(enc.requestId, /^[0-9a-f]{32}$/);
    const { transport, secure, inner } = layers(enc.bytes);
    assertOfficial("v1", "transport", transport);
    assertOfficial("v1", "secure_request", secure);
    assertOfficial("v1", "request", inner);
    const d = decodeRequest(enc.bytes);
    assert.deepEqual(d.request, enc.request);
    assert.equal(d.replyTo, enc.replyTo);
    assert.ok(enc.replyTo.startsWith("provisioning.reply."));
    if (k.agent === "discovery") assert.equal(d.payload.toString(), "ping");
    else assert.deepEqual(decodeRpcRequest(d.payload), JSON.parse(k.payload));
  }
});

test("every reply kind validates against the official schemas, carries a correct hash and round-trips", { skip: OFFICIAL_SKIP }, () => {
  const bodies = [
    "pong",
    encodeRpcReply({ action: "inventory", statuscode: StatusCode.OK, statusmsg: "OK", data: { agents: ["rpcutil"] } }),
    encodeRpcReply({ action: "jwt", statuscode: StatusCode.Aborted, statusmsg: "Incorrect provision token supplied", data: {} }),
  ];
  for (const payload of bodies) {
    const id = newRequestId();
    const bytes = encodeReply({ requestId: id, agent: "choria_provision", senderid: "n1.example.net", payload });
    const { transport, secure, inner } = layers(bytes);
    assertOfficial("v1", "transport", transport);
    assertOfficial("v1", "secure_reply", secure);
    assertOfficial("v1", "reply", inner);
    assert.equal(transport.headers["reply-to"], undefined);
    const d = decodeReply(bytes);
    assert.equal(d.sender, "n1.example.net");
    assert.equal(d.reply.envelope.requestid, id);
    assert.equal(d.reply.message, payload);
  }
  const r = decodeRpcReply(bodies[2]);
  assert.equal(r.statuscode, StatusCode.Aborted);
  assert.equal(r.statusmsg, "Incorrect provision token supplied");
});

test("bad input gives a typed ProtocolError naming what is wrong", () => {
  expectProtocolError(() => decodeRequest("{nope"), "not_json", "transport");
  expectProtocolError(() => decodeRequest(JSON.stringify({ protocol: "choria:transport:9", data: "", headers: {} })), "unknown_protocol");
  expectProtocolError(() => decodeRequest(JSON.stringify({ protocol: "choria:transport:1", data: "%%%", headers: {} })), "bad_base64");
  expectProtocolError(() => decodeRequest(JSON.stringify({ protocol: "choria:transport:1", data: "aGk=" })), "schema", "transport");
  expectProtocolError(() => decodeRequest(JSON.stringify({ protocol: "choria:transport:1", data: Buffer.from("not json").toString("base64"), headers: {} })), "not_json");
  const big = "x".repeat(2048);
  expectProtocolError(() => decodeRequest(big, { maxBytes: 1024 }), "oversize");

  // tamper with a reply: the hash no longer matches
  const good = encodeReply({ requestId: newRequestId(), agent: "rpcutil", senderid: "n1", payload: "{}" });
  const t = JSON.parse(Buffer.from(good).toString());
  const s = JSON.parse(Buffer.from(t.data, "base64").toString());
  s.message = s.message.replace('"n1"', '"n2"');
  t.data = Buffer.from(JSON.stringify(s)).toString("base64");
  expectProtocolError(() => decodeReply(JSON.stringify(t)), "hash_mismatch", "secure_reply");

  expectProtocolError(() => decodeRpcRequest("not json"), "bad_payload", "rpc");
  expectProtocolError(() => decodeRpcReply("[]"), "bad_payload", "rpc");
  expectProtocolError(() => decodeLifecycle("{}"), "unknown_protocol", "lifecycle");
});

test("a field nested 20,000 deep is named in a short message, not written out (JSON.stringify would overflow the stack)", () => {
  const deep = '{"k":'.repeat(20_000) + "1" + "}".repeat(20_000);
  assert.throws(
    () => decodeRequest(`{"protocol":${deep},"data":"","headers":{}}`),
    (e: unknown) => e instanceof ProtocolError && e.code === "unknown_protocol" && e.message.includes("unsupported protocol <an object nested more than 64 levels deep>"),
  );
  assert.throws(
    () => decodeRequest(`{"protocol":"choria:transport:1","data":"","headers":{}}`.replace('"choria:transport:1"', `[${deep}]`)),
    (e: unknown) => e instanceof ProtocolError && /<a list nested more than 64 levels deep>/.test(e.message),
  );
});

test("request schema checks agree with the official schema on each rejected mutation", { skip: OFFICIAL_SKIP }, () => {
  const base = encodeRequest({ ...caller, agent: "rpcutil", payload: encodeRpcRequest("rpcutil", "inventory") }).request;
  const official = officialValidator("v1", "request");
  const mutations: Array<[string, (r: any) => void]> = [
    ["dashed 36-char request id", (r) => (r.envelope.requestid = "a2f0ca71-7c69-4f20-86cf-a81b6c494648")],
    ["ttl below 30", (r) => (r.envelope.ttl = 29)],
    ["float ttl", (r) => (r.envelope.ttl = 60.5)],
    ["string time", (r) => (r.envelope.time = "1700000000")],
    ["empty callerid", (r) => (r.envelope.callerid = "")],
    ["empty collective", (r) => (r.envelope.collective = "")],
    ["missing filter", (r) => delete r.envelope.filter],
    ["filter without identity", (r) => delete r.envelope.filter.identity],
    ["bad fact operator", (r) => (r.envelope.filter.fact = [{ fact: "a", operator: "~", value: "b" }])],
    ["empty fact value", (r) => (r.envelope.filter.fact = [{ fact: "a", operator: "==", value: "" }])],
    ["empty message", (r) => (r.message = "")],
    ["wrong protocol", (r) => (r.protocol = "choria:request:2")],
  ];
  assert.ok(official(base));
  assert.doesNotThrow(() => checkRequestV1(base));
  for (const [what, mutate] of mutations) {
    const r = structuredClone(base);
    mutate(r);
    assert.equal(official(r), false, `official schema should reject: ${what}`);
    assert.throws(() => checkRequestV1(r), ProtocolError, `codec should reject: ${what}`);
  }
});

test("request payload follows the server's base64-or-raw rule", () => {
  assert.equal(decodeStdBase64("cGluZw==")?.toString(), "ping");
  assert.equal(decodeStdBase64('{"agent":"x"}'), undefined);
  // raw "ping" is valid base64 of garbage: exactly why Go sends cGluZw==
  assert.notEqual(decodeStdBase64("ping")?.toString(), "ping");
  assert.equal(decodeStdBase64("cGlu\r\nZw==")?.toString(), "ping");
});

test("base64 test agrees with Go's StdEncoding grammar on random and edge-case strings", () => {
  // the grammar Go's decoder accepts (padding required, standard alphabet only)
  const grammar = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  const alphabet = "ABCxyz019+/=-_ !é\u0000";
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const cases = ["", "=", "==", "====", "A===", "AA==", "AAA=", "AAAA", "AA=A", "A=AA", "AB-_", "AB_=", "QR==", "QQ==", "AAAA====", "AAAAAA==", "AA==AA==", " AAA", "AAA\u00e9"];
  for (let i = 0; i < 20_000; i++) {
    const len = rnd(3) === 0 ? rnd(12) : 4 * rnd(4);
    let s = "";
    for (let j = 0; j < len; j++) s += alphabet[rnd(alphabet.length)];
    cases.push(s);
  }
  for (const s of cases) {
    const got = decodeStdBase64(s);
    assert.equal(got !== undefined, grammar.test(s), `${JSON.stringify(s)}: decodable?`);
    if (got) assert.deepEqual(got, Buffer.from(s, "base64"), JSON.stringify(s));
  }
});

test("encodeRequest refuses a ttl the server would reject", () => {
  assert.throws(() => encodeRequest({ ...caller, agent: "rpcutil", payload: "x", ttl: 10 }), RangeError);
});

test("lifecycle events encode in both formats and decode back", () => {
  const e = newLifecycleEvent("startup", "n1.example.net", "provision_mode_server", { version: "0.29.4" });
  for (const fmt of ["choria", "cloudevent"] as const) {
    const d = decodeLifecycle(encodeLifecycle(e, fmt));
    assert.equal(d.format, fmt);
    assert.equal(d.type, "startup");
    assert.deepEqual(d.event, e);
  }
  const legacy = decodeLifecycle(JSON.stringify({ ...e, protocol: "choria:lifecycle:startup:1" }));
  assert.equal(legacy.type, "startup");
});

test("registration data round-trips compressed and plain", { skip: OFFICIAL_SKIP }, () => {
  for (const compress of [true, false]) {
    const bytes = encodeRegistration({ identity: "n1.example.net", file: "/etc/node/metadata.json", content: '{"dc":"ams1"}', mtime: 1700000000, compress });
    const { transport, secure, inner } = layers(bytes);
    assertOfficial("v1", "transport", transport);
    assertOfficial("v1", "secure_request", secure);
    assertOfficial("v1", "request", inner);
    const d = decodeRegistration(bytes);
    assert.equal(d.identity, "n1.example.net");
    assert.equal(d.content.toString(), '{"dc":"ams1"}');
    assert.equal(compress ? typeof d.document.zcontent : typeof d.document.content, "string");
  }
});

test("filters match as a server matches them", () => {
  const node = { identity: "n1.example.net", agents: ["choria_provision", "rpcutil"], classes: ["role::web"], facts: { country: "nl", cpu: { count: 8 } } };
  assert.ok(filterMatches(emptyFilter(), node));
  assert.ok(filterMatches({ ...emptyFilter(), agent: ["choria_provision"] }, node));
  assert.ok(!filterMatches({ ...emptyFilter(), agent: ["puppet"] }, node));
  assert.ok(filterMatches({ ...emptyFilter(), identity: ["other", "/^n\\d/"] }, node));
  assert.ok(!filterMatches({ ...emptyFilter(), identity: ["other"] }, node));
  assert.ok(filterMatches({ ...emptyFilter(), cf_class: ["/web/"] }, node));
  assert.ok(filterMatches({ ...emptyFilter(), fact: [{ fact: "cpu.count", operator: ">=", value: "4" }] }, node));
  assert.ok(!filterMatches({ ...emptyFilter(), fact: [{ fact: "cpu.count", operator: "<", value: "4" }] }, node));
  assert.ok(filterMatches({ ...emptyFilter(), fact: [{ fact: "country", operator: "=~", value: "/^n/" }] }, node));
  assert.ok(!filterMatches({ ...emptyFilter(), fact: [{ fact: "missing", operator: "==", value: "x" }] }, node));
});
