import { test } from "node:test";
import assert from "node:assert/strict";
import { BrokerSetHealth, Rollout, type RolloutOptions } from "../../src/arrival/index.js";
import type { Decider } from "../../src/types/index.js";

const O: RolloutOptions = { enabled: true, canary: 10, minArrivals: 9, maxLost: 0.1, onFailure: "revert", trustInitial: false };
function decider(version: string): Decider {
  return { ref: { name: "p", version, hash: `sha256:${version}` }, decide: () => Promise.reject(new Error("not called")) };
}

/** admits n canary nodes and restarts them */
function restartCanary(r: Rollout, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = r.admit();
    assert.ok(a?.trial, `canary slot ${i}`);
    r.ended(a.decider.ref.hash, true, true, "eu");
  }
}

test("the first version is a canary unless trust_initial; a version an earlier run trusted is trusted", () => {
  assert.equal(new Rollout(O).load(decider("1"), 0).kind, "canary");
  assert.equal(new Rollout({ ...O, trustInitial: true }).load(decider("1"), 0).kind, "trusted");
  assert.equal(new Rollout(O, decider("1").ref).load(decider("1"), 0).kind, "trusted");
  // a different version at start: a canary even with trust_initial, since history exists
  assert.equal(new Rollout({ ...O, trustInitial: true }, decider("0").ref).load(decider("1"), 0).kind, "canary");
});

test("a canary restarts at most `canary` nodes; a node that was not restarted gives its slot back", () => {
  const r = new Rollout({ ...O, trustInitial: true });
  r.load(decider("1"), 0);
  r.load(decider("2"), 0);
  restartCanary(r, 9);
  const a = r.admit()!;
  assert.equal(r.admit(), undefined, "budget spent: the next node waits");
  r.ended(a.decider.ref.hash, true, false); // deferred: slot back
  assert.ok(r.admit()?.trial);
  assert.equal(r.admit(), undefined);
});

test("promoted once enough arrived and the pending ones could not make it fail", () => {
  const r = new Rollout({ ...O, trustInitial: true });
  r.load(decider("1"), 0);
  r.load(decider("2"), 0);
  restartCanary(r, 10);
  for (let i = 0; i < 8; i++) assert.equal(r.result("sha256:2", "arrived", `n${i}`, 1), undefined);
  // 9 arrived, 1 pending: even lost it would be 10%, not more
  const c = r.result("sha256:2", "arrived", "n8", 1);
  assert.equal(c?.kind, "trusted");
  assert.deepEqual([r.name, r.admit()?.decider.ref.version, r.admit()?.trial], ["trusted", "2", false]);
});

test("a canary whose lost share passes max_lost fails: revert keeps the previous version deciding, pause decides nothing", () => {
  for (const onFailure of ["revert", "pause"] as const) {
    const r = new Rollout({ ...O, trustInitial: true, onFailure });
    r.load(decider("1"), 0);
    r.load(decider("2"), 0);
    restartCanary(r, 10);
    assert.equal(r.result("sha256:2", "lost", "a", 1), undefined, "1 of 10 is 10%: not past");
    const c = r.result("sha256:2", "lost", "b", 2, "us");
    assert.equal(c?.kind, "failed");
    if (c?.kind !== "failed") return;
    assert.deepEqual([c.failure.lost, c.failure.brokerSets, c.failure.lostIn, c.state], [["a", "b"], ["eu"], ["us"], onFailure === "revert" ? "reverted" : "paused"]);
    if (onFailure === "revert") assert.deepEqual([r.admit()?.decider.ref.version, r.admit()?.trial], ["1", false]);
    else assert.equal(r.admit(), undefined);
    // the failed version reloaded unchanged stays failed
    assert.equal(r.load(decider("2"), 3).kind, "unchanged");
  }
});

test("with no previous version to revert to a failed canary pauses; an operator can accept it", () => {
  const r = new Rollout(O);
  r.load(decider("1"), 0);
  restartCanary(r, 10);
  r.result("sha256:1", "lost", "a", 1);
  const c = r.result("sha256:1", "lost", "b", 1);
  assert.deepEqual([c?.kind, r.name], ["failed", "paused"]);
  assert.equal(r.accept()?.kind, "trusted");
  assert.equal(r.admit()?.decider.ref.version, "1");
});

test("a broker set is unhealthy once enough of its recent nodes were lost, and healthy again when cleared", () => {
  const h = new BrokerSetHealth({ window: 10, minLost: 3, maxLost: 0.1 });
  const eu = ["nats://eu:4222"];
  for (let i = 0; i < 10; i++) h.record("eu", eu, false, 0);
  assert.equal(h.record("eu", eu, true, 1), undefined);
  assert.equal(h.record("eu", eu, true, 2), undefined, "2 lost: below min_lost");
  const tripped = h.record("eu", eu, true, 3);
  assert.deepEqual([tripped?.name, tripped?.lost, tripped?.of], ["eu", 3, 10]);
  assert.match(h.check("eu", eu)!, /broker set eu is unhealthy: 3 of its last 10 .*POST \/broker-sets\/eu\/clear/);
  // the same name with other brokers is another set (another policy version's)
  assert.equal(h.check("eu", ["nats://eu-typo:4222"]), undefined);
  assert.equal(h.clear("eu", 10), 1);
  assert.equal(h.check("eu", eu), undefined);
  assert.equal(h.clear("eu", 11), 0);
  // nodes restarted before the clear and lost after it do not condemn the set again
  for (let i = 0; i < 5; i++) assert.equal(h.record("eu", eu, true, 12, 9), undefined);
  assert.equal(h.check("eu", eu), undefined);
  for (let i = 0; i < 2; i++) h.record("eu", eu, true, 13, 12);
  assert.ok(h.record("eu", eu, true, 14, 12), "nodes decided after the clear do");
});
