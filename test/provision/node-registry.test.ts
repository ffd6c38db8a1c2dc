import { test } from "node:test";
import assert from "node:assert/strict";
import { NodeRegistry, TIMELINE_MAX } from "../../src/provision/node-registry.js";
import type { DecisionRecord } from "../../src/types/index.js";

const policy = (version: string) => ({ name: "fleet", version, hash: "sha256:x" });
const record = (identity: string, over: Partial<DecisionRecord> = {}): DecisionRecord => ({ identity, time: "", outcome: "configure", reason: "ok", policy: policy("1"), brokerSet: "ams", fired: [{ name: "r1", ruleSet: "", why: "facts.dc equal \"ams1\"" }], durations: {}, ...over });

test("a node's run: queued, in flight with its step, then the record's state, decision and serial; the timeline keeps each step's end", () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const r = new NodeRegistry(10, () => now);
  r.queued("a.example.net");
  assert.equal(r.state("a.example.net"), "queued");
  r.started("a.example.net");
  r.step("a.example.net", "inventory", "start");
  assert.deepEqual([...r.list({ state: "in_flight" })].map((n) => n.step), ["inventory"]);
  now += 1500;
  r.step("a.example.net", "inventory", "ok");
  r.step("a.example.net", "configure", "start");
  r.step("a.example.net", "configure", "error");
  r.recorded(record("a.example.net", { certificate: { serial: "abc", fingerprint: "", notAfter: "" } }));
  const d = r.show("a.example.net")!;
  assert.equal(d.state, "provisioned");
  assert.equal(d.serial, "abc");
  assert.equal(d.policyVersion, "1");
  assert.equal(d.brokerSet, "ams");
  assert.equal(d.step, undefined);
  assert.deepEqual(d.fired.map((f) => f.name), ["r1"]);
  assert.deepEqual(d.timeline.map((t) => [t.step, t.result]), [["queued", "info"], ["inventory", "ok"], ["configure", "error"], ["decision:configure", "ok"]]);
  assert.equal(d.timeline[1]!.time, "2026-01-01T00:00:01.500Z", "ms kept in the timeline");
});

test("an error after a decision keeps the node's policy version, broker set and rules; a refusal with a hold says until when", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const r = new NodeRegistry(10, () => now);
  r.recorded(record("a"));
  r.recorded(record("a", { outcome: "error", reason: "configure timed out", policy: undefined, brokerSet: undefined, fired: [] }), 0);
  const a = r.show("a")!;
  assert.equal(a.state, "failed");
  assert.equal(a.lastError, "configure timed out");
  assert.equal(a.policyVersion, "1");
  assert.equal(a.brokerSet, "ams");
  assert.deepEqual(a.fired.map((f) => f.name), ["r1"]);
  r.recorded(record("b", { outcome: "refused", reason: "CSR refused (weak_key)" }), 300_000);
  assert.deepEqual(r.show("b")!.hold, { reason: "CSR refused (weak_key)", until: "2026-01-01T00:05:00.000Z" });
});

test("filters: state, identity glob, policy version, broker set, combined", () => {
  const r = new NodeRegistry();
  r.recorded(record("web1.ams.example.net"));
  r.recorded(record("web2.nyc.example.net", { brokerSet: "nyc", policy: policy("2") }));
  r.recorded(record("db1.ams.example.net", { outcome: "defer" }));
  const ids = (f: Parameters<NodeRegistry["list"]>[0]) => [...r.list(f)].map((n) => n.identity).sort();
  assert.deepEqual(ids({ identity: "web*" }), ["web1.ams.example.net", "web2.nyc.example.net"]);
  assert.deepEqual(ids({ identity: "*.ams.*" }), ["db1.ams.example.net", "web1.ams.example.net"]);
  assert.deepEqual(ids({ policyVersion: "2" }), ["web2.nyc.example.net"]);
  assert.deepEqual(ids({ brokerSet: "ams", state: "deferred" }), ["db1.ams.example.net"]);
  assert.deepEqual(ids({ state: "provisioned", identity: "web?.nyc.example.net" }), ["web2.nyc.example.net"]);
  assert.deepEqual(r.counts(), { provisioned: 2, deferred: 1 });
});

test("bounded: past maxNodes the oldest finished node goes, never one awaiting an operator or in flight; the timeline keeps the latest entries", () => {
  const r = new NodeRegistry(3);
  r.hold("wait", "awaiting_approval", "new hardware");
  r.started("busy");
  r.recorded(record("old"));
  r.recorded(record("new"));
  assert.equal(r.size, 3);
  assert.equal(r.has("old"), false, "the oldest finished node was dropped");
  assert.ok(r.has("wait") && r.has("busy") && r.has("new"));
  for (let i = 0; i < TIMELINE_MAX + 5; i++) r.step("new", `s${i % 3}`, "ok");
  const t = r.show("new")!.timeline;
  assert.equal(t.length, TIMELINE_MAX);
  assert.equal(t.at(-1)!.step, `s${(TIMELINE_MAX + 4) % 3}`);
});

test("hold, unhold and forget", () => {
  const r = new NodeRegistry();
  r.hold("a", "conflict_hold", "two nodes claim this identity", Date.now() + 60_000);
  assert.equal(r.show("a")!.hold!.reason, "two nodes claim this identity");
  assert.ok(r.show("a")!.hold!.until);
  assert.equal(r.unhold("a", "released"), true);
  assert.equal(r.show("a")!.hold, undefined);
  assert.equal(r.state("a"), "released");
  assert.equal(r.forget("a"), true);
  assert.equal(r.show("a"), undefined);
  assert.equal(r.unhold("a"), false);
});
