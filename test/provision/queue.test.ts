import { test } from "node:test";
import assert from "node:assert/strict";
import { WorkQueue } from "../../src/provision/queue.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test("a node queued or in progress is never queued twice", async () => {
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000 });
  assert.equal(q.add("a", "event"), "queued");
  assert.equal(q.add("a", "discovery"), "duplicate");
  const item = await q.take();
  assert.equal(item?.identity, "a");
  assert.equal(q.add("a", "discovery"), "duplicate", "in progress counts as known");
  q.done("a");
  assert.equal(q.add("a", "discovery"), "queued");
});

test("the queue is bounded", () => {
  const q = new WorkQueue({ maxSize: 2, maxWaitMs: 60_000 });
  assert.equal(q.add("a", "event"), "queued");
  assert.equal(q.add("b", "event"), "queued");
  assert.equal(q.add("c", "event"), "full");
  assert.equal(q.size, 2);
});

test("a restarted node is held for its splay and can be queued after", () => {
  const c = clock();
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000, now: c.now });
  q.add("a", "event");
  void q.take();
  q.done("a", 5000);
  assert.equal(q.add("a", "event"), "held");
  c.advance(5001);
  assert.equal(q.add("a", "event"), "queued");
});

test("a node that waited too long is dropped at take time and found again later", async () => {
  const c = clock();
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 1000, now: c.now });
  q.add("old", "discovery");
  c.advance(2000);
  q.add("new", "discovery");
  const item = await q.take();
  assert.equal(item?.identity, "new");
  assert.equal(q.dropped, 1);
  assert.equal(q.has("old"), false);
  assert.equal(q.add("old", "discovery"), "queued");
});

test("waiting takers are handed new work directly, and close releases them", async () => {
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000 });
  const p1 = q.take();
  const p2 = q.take();
  q.add("x", "event");
  assert.equal((await p1)?.identity, "x");
  assert.equal(q.busy, 1);
  q.close();
  assert.equal(await p2, undefined);
});

test("clear drops queued entries but not those in progress", async () => {
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000 });
  q.add("a", "event");
  q.add("b", "event");
  q.add("c", "event");
  await q.take();
  assert.equal(q.clear(), 2);
  assert.equal(q.size, 0);
  assert.equal(q.has("a"), true);
  assert.equal(q.add("b", "event"), "queued");
});

test("a paused queue hands nothing out, keeps accepting, and resumes in order", async () => {
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000 });
  q.pause();
  const waiting = q.take();
  assert.equal(q.add("a", "event"), "queued");
  assert.equal(q.add("b", "event"), "queued");
  assert.equal(q.size, 2);
  assert.equal(q.busy, 0, "nothing handed out while paused");
  q.resume();
  assert.equal((await waiting)?.identity, "a");
  assert.equal((await q.take())?.identity, "b");
});

test("a node that asks while held is queued as soon as its hold ends", () => {
  const c = clock();
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 60_000, now: c.now });
  q.add("a", "event");
  void q.take();
  q.done("a", 1000);
  assert.equal(q.add("a", "event"), "held");
  assert.equal(q.releaseHeld(), 0, "still held");
  c.advance(1001);
  assert.equal(q.releaseHeld(), 1);
  assert.equal(q.has("a"), true);
  assert.equal(q.releaseHeld(), 0, "released once");
  void q.take();
  q.done("a", 1000);
  assert.equal(q.add("a", "discovery"), "held");
  c.advance(1001);
  assert.equal(q.releaseHeld(), 0, "a discovery reply during the hold is no reason to come back: the node had not left yet");
});

test("nodes dropped for waiting too long are reported", async () => {
  const c = clock();
  const stale: string[] = [];
  const q = new WorkQueue({ maxSize: 10, maxWaitMs: 1000, now: c.now, onStale: (id) => stale.push(id) });
  q.add("old", "event");
  c.advance(1500);
  q.add("new", "event");
  assert.equal((await q.take())?.identity, "new");
  assert.deepEqual(stale, ["old"]);
});

test("expired holds are swept once the held list grows, and live holds stay held", () => {
  const c = clock();
  const q = new WorkQueue({ maxSize: 100_000, maxWaitMs: 60_000, now: c.now });
  // 15k nodes held for a minute, then the minute passes
  for (let i = 0; i < 15_000; i++) q.done(`old${i}`, 60_000);
  c.advance(61_000);
  // 30k more held now: the list crosses its sweep thresholds and the expired ones go
  for (let i = 0; i < 30_000; i++) q.done(`new${i}`, 60_000);
  assert.ok(q.heldCount <= 30_000 + 1, `expired holds swept (${q.heldCount} held)`);
  assert.equal(q.add("new0", "event"), "held");
  assert.equal(q.add("new29999", "event"), "held");
  assert.equal(q.add("old0", "event"), "queued");
});
