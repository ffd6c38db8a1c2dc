import { test } from "node:test";
import assert from "node:assert/strict";
import { ArrivalTracker, type Expectation } from "../../src/arrival/index.js";

const D = 1000;
function exp(identity: string, at: number, o: Partial<Expectation> = {}): Expectation {
  return { identity, decidedAt: at - 10, restartedAt: at, decisionTime: new Date(at - 10).toISOString(), confirmed: true, brokerSet: "eu", brokers: ["nats://eu:4222"], homes: ["eu"], ...o };
}

test("a node seen at home before its deadline arrived, with its time to arrival; one not seen by then is lost", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  assert.equal(t.expect(exp("a", 0), 0), undefined);
  assert.equal(t.expect(exp("b", 0), 0), undefined);
  assert.deepEqual(t.expire(D - 1), []);
  const v = t.seen("a", "eu", 400)!;
  assert.deepEqual([v.result, v.afterMs, v.seenAt], ["arrived", 400, "eu"]);
  const lost = t.expire(D);
  assert.deepEqual(lost.map((x) => [x.expectation.identity, x.result]), [["b", "lost"]]);
  assert.equal(t.lostCount, 1);
  assert.deepEqual(t.lost().map((l) => l.identity), ["b"]);
  assert.equal(t.pendingCount, 0);
});

test("a lost node seen later is arrived_late, once; it is no longer listed as lost", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  t.expect(exp("b", 0), 0);
  t.expire(D);
  const late = t.seen("b", "eu", 5000)!;
  assert.deepEqual([late.result, late.afterMs], ["arrived_late", 5000]);
  assert.equal(t.lostCount, 0);
  assert.deepEqual(t.lost(), []);
  // a second startup event (another restart of the server) is not another verdict
  assert.equal(t.seen("b", "eu", 6000), undefined);
});

test("a startup event that beats the restart's record counts when it came after the decision began", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  // decided at 110, restart recorded at 120, startup event seen at 115
  assert.equal(t.seen("a", "eu", 115), undefined);
  const v = t.expect(exp("a", 120), 120)!;
  assert.equal(v.result, "arrived");
  // an event from before the decision is an earlier life of the server, not this arrival
  t.seen("old", "eu", 100);
  assert.equal(t.expect(exp("old", 500), 500), undefined);
});

test("a node whose home reconnected during its wait is unconfirmed, not lost; a home down all along loses it", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  t.homeConnected("eu", 0);
  t.homeConnected("us", 0);
  t.expect(exp("a", 100), 100);
  t.expect(exp("b", 100, { homes: ["us"] }), 100);
  t.homeDisconnected("eu");
  t.homeConnected("eu", 600); // back, but a startup event at 500 would have gone unheard
  t.homeDisconnected("us"); // down and still down: the node could not reach it either
  const v = t.expire(100 + D);
  assert.deepEqual(v.map((x) => [x.expectation.identity, x.result]), [["a", "unconfirmed"], ["b", "lost"]]);
  assert.equal(t.lostCount, 1);
});

test("a restart whose reply was lost is awaited but never reported lost", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  t.expect(exp("a", 0, { confirmed: false }), 0);
  t.expect(exp("b", 0, { confirmed: false }), 0);
  assert.equal(t.seen("a", "eu", 300)?.result, "arrived");
  assert.deepEqual(t.expire(D), []);
});

test("a node provisioned again is awaited again: its old lost verdict no longer stands", () => {
  const t = new ArrivalTracker({ deadlineMs: D });
  t.expect(exp("a", 0), 0);
  t.expire(D);
  assert.equal(t.lostCount, 1);
  t.expect(exp("a", 2000), 2000);
  assert.equal(t.lostCount, 0);
  assert.equal(t.seen("a", "eu", 2500)?.result, "arrived");
});
