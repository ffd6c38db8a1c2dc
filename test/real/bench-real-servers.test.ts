/**
 * bench/real-servers.ts's plumbing on two real servers (`npm run bench` is not part of CI): every
 * server arrives home, and what the bench reports about it is there and consistent. The
 * reference's run is checked only when CHORIA_REFERENCE_PROVISIONER names its binary.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runRealServers } from "../../bench/real-servers.js";
import { REFERENCE_ENV } from "../../bench/reference.js";
import * as rc from "../helpers/real-choria.js";

const log = (): void => undefined;

function assertRun(r: Awaited<ReturnType<typeof runRealServers>>): void {
  assert.equal(r.arrived, 2, "both servers arrived home");
  // each node's latency lies within the run's span (first startup to last arrival)
  assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.max <= r.wallMs, JSON.stringify(r));
  assert.ok(r.startupSpreadMs < r.wallMs, JSON.stringify(r));
  assert.ok(r.serverRssMiB.mean > 5 && r.serverRssMiB.max >= r.serverRssMiB.mean, JSON.stringify(r.serverRssMiB));
  assert.ok(r.peakRssMiB > 0, "the provisioner's peak RSS");
}

test("ours: two real servers provisioned and home, timed from their startup events", { skip: rc.REAL_SKIP }, async () => {
  const r = await runRealServers(rc, { provisioner: "ours", servers: 2, log });
  assertRun(r);
  assert.deepEqual(r.outcomes, { configure: 2 });
  assert.ok((r.stepMeansMs?.sign ?? 0) > 0, "our CA signed: the step means come from the daemon's records");
});

test("the reference with helper (a): two real servers home through cfssl and the lab's CA", { skip: rc.REAL_SKIP ?? (process.env[REFERENCE_ENV] ? undefined : `${REFERENCE_ENV} is not set`) }, async () => {
  const r = await runRealServers(rc, { provisioner: "reference", servers: 2, referenceBinary: process.env[REFERENCE_ENV], log });
  assertRun(r);
  assert.ok(r.helperCpuS > 0, "the helper processes ran (reaped children's CPU)");
  assert.match(r.helper ?? "", /legacy-helper\.py --cfssl http:\/\/127\.0\.0\.1:\d+ --ca \S+ --home nats:\/\/127\.0\.0\.1:\d+$/);
});
