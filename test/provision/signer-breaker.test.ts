import { test } from "node:test";
import assert from "node:assert/strict";
import { SignerBreaker } from "../../src/provision/signer-breaker.js";

test("the breaker opens after N failures in a row, says so once, probes until the signer answers and then releases every waiter at once", async () => {
  const events: string[] = [];
  let answering = false;
  let probes = 0;
  let wake: () => void = () => undefined;
  const b = new SignerBreaker({
    threshold: 3,
    probeBaseMs: 5,
    probeMaxMs: 20,
    probe: async () => {
      probes++;
      if (!answering) throw new Error("down");
    },
    onDown: (e) => events.push(`down: ${e.message}`),
    onUp: () => {
      events.push("up");
      wake();
    },
  });
  const err = new Error("unreachable");
  b.failure(err);
  b.failure(err);
  assert.equal(b.up, true, "two failures are not an outage");
  b.success();
  b.failure(err);
  b.failure(err);
  assert.equal(b.up, true, "a success starts the count again");
  b.failure(err);
  assert.equal(b.up, false);
  b.failure(err);
  assert.deepEqual(events, ["down: unreachable"], "one warn for one outage");
  let released = 0;
  const waiters = [b.waitUp().then(() => released++), b.waitUp().then(() => released++)];
  const ac = new AbortController();
  const cancelled = assert.rejects(b.waitUp(ac.signal), /cancelled/);
  ac.abort();
  await cancelled;
  // let a few probes fail, then answer
  while (probes < 3) await new Promise((r) => setTimeout(r, 5));
  assert.equal(released, 0);
  const up = new Promise<void>((r) => (wake = r));
  answering = true;
  await up;
  await Promise.all(waiters);
  assert.equal(released, 2);
  assert.deepEqual(events, ["down: unreachable", "up"]);
  await b.waitUp();
  b.close();
});
