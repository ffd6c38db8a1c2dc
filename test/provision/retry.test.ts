import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_RETRY, RetryBook } from "../../src/provision/retry.js";

test("a failed node is retried within seconds, then on a doubling, capped backoff; success forgets it", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  const delays = Array.from({ length: 10 }, () => b.plan("n1", "error", 0));
  const ms = delays.map((p) => ("retryInMs" in p ? p.retryInMs : NaN));
  assert.ok(ms[0] >= 500 && ms[0] <= 1000, `first retry after ${ms[0]} ms`);
  assert.ok(ms[3] >= 4000 && ms[3] <= 8000, `fourth after ${ms[3]} ms`);
  assert.ok(ms.every((x) => x <= DEFAULT_RETRY.maxMs), "capped");
  assert.deepEqual(b.plan("n1", "configure", 10_000), { holdMs: 10_000, thenRetry: false });
  assert.equal(b.size, 0);
  const again = b.plan("n1", "error", 0);
  assert.ok("retryInMs" in again && again.retryInMs <= 1000, "the count started over");
});

test("while the broker link settles, a node nothing answers for is retried a few times, then left to intake", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  // the broker came back 2 s ago: the node may not have resubscribed yet
  const plans = Array.from({ length: DEFAULT_RETRY.goneTries + 1 }, () => b.plan("ghost", "gone", 0, undefined, 2000));
  assert.ok(plans.slice(0, -1).every((p) => "retryInMs" in p));
  assert.deepEqual(plans.at(-1), { holdMs: 0, thenRetry: false });
  assert.equal(b.size, 0, "nothing kept for a node that is gone");
  // a series begun while settling runs its course after the window
  const c = new RetryBook(DEFAULT_RETRY);
  assert.ok("retryInMs" in c.plan("late", "gone", 0, undefined, DEFAULT_RETRY.settlingMs - 1));
  assert.ok("retryInMs" in c.plan("late", "gone", 0, undefined, DEFAULT_RETRY.settlingMs + 5000));
});

test("otherwise a node nothing answers for is not retried: a phantom announcement costs one round trip, not four", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  assert.deepEqual(b.plan("phantom", "gone", 0), { holdMs: 0, thenRetry: false }, "the broker never dropped");
  assert.deepEqual(b.plan("phantom2", "gone", 0, undefined, DEFAULT_RETRY.settlingMs + 1), { holdMs: 0, thenRetry: false }, "it came back long ago");
  assert.equal(b.size, 0);
  // a node that failed first and then went is still retried
  assert.ok("retryInMs" in b.plan("flaky", "error", 0));
  assert.ok("retryInMs" in b.plan("flaky", "gone", 0));
});

test("a deferred node is held on its own, longer backoff, or for the time the policy asked, and then tried again", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  const holds = Array.from({ length: 8 }, () => b.plan("d1", "defer", 0)).map((p) => ("holdMs" in p && p.thenRetry ? p.holdMs : NaN));
  assert.ok(holds[0] >= DEFAULT_RETRY.deferBaseMs / 2 && holds[0] <= DEFAULT_RETRY.deferBaseMs, `first hold ${holds[0]} ms`);
  assert.ok(holds[2] >= holds[0], "it grows");
  assert.ok(holds.every((h) => h <= DEFAULT_RETRY.deferMaxMs));
  // in 3 minutes a deferred node is decided at most a handful of times, not every discovery cycle
  let t = 0;
  let decisions = 0;
  const c = new RetryBook(DEFAULT_RETRY);
  while (t < 180_000) {
    decisions++;
    const p = c.plan("d2", "defer", 0);
    t += "holdMs" in p ? p.holdMs : 0;
  }
  assert.ok(decisions <= 4, `${decisions} decisions in 3 minutes`);
  assert.deepEqual(b.plan("d3", "defer", 0, 5000), { holdMs: 5000, thenRetry: true });
});

test("a node whose restart went unanswered is tried again after its hold; one that answered is not", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  assert.deepEqual(b.plan("r1", "error", 10_000), { holdMs: 10_000, thenRetry: true });
  assert.deepEqual(b.plan("r2", "configure", 10_000), { holdMs: 10_000, thenRetry: false });
});

test("failures of the outage itself do not use up the tries a node nothing answers for gets while the link settles", () => {
  const b = new RetryBook(DEFAULT_RETRY);
  // lost with the connection, retried into the outage, failed again: then the broker is back
  for (let i = 0; i < 3; i++) assert.ok("retryInMs" in b.plan("n1", "error", 0));
  const gone = Array.from({ length: DEFAULT_RETRY.goneTries + 1 }, () => b.plan("n1", "gone", 0, undefined, 1000));
  assert.ok(gone.slice(0, -1).every((p) => "retryInMs" in p), "each gone retried while the node may not have resubscribed");
  assert.deepEqual(gone.at(-1), { holdMs: 0, thenRetry: false });
  // the backoff kept counting every failure: the later tries are spread over seconds, not bunched
  const c = new RetryBook(DEFAULT_RETRY);
  for (let i = 0; i < 3; i++) c.plan("n2", "error", 0);
  const p = c.plan("n2", "gone", 0, undefined, 1000);
  assert.ok("retryInMs" in p && p.retryInMs >= 4000, JSON.stringify(p));
});
