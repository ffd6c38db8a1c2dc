/**
 * The audit log matches the fleet after each of three faults mid-run: a broker blip, a daemon
 * SIGKILL and restart, an HA handover (the leader SIGKILLed). Every node the fleet says was
 * configured is in the audit; every configure the fleet received is in it (a double configure
 * shows as two); no flow that began after a node accepted its restart is recorded as `error`,
 * and no node that became a server has `error` as its latest record.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ELECTION_BUCKET } from "../../src/ha/index.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { startTestNats } from "../helpers/processes.js";
import { makeBucket } from "../ha/helpers.js";
import { compare, daemonConfig, readAudit, startAuditRun, type AuditRun } from "./audit-fleet.js";

const N = 200;

function check(name: string, run: AuditRun, files: string[]): void {
  const c = compare(readAudit(files), run.fleet.report().nodes, run.restartedAt);
  const t = run.fleet.report().totals;
  console.log(`${name}: fleet configured ${t.configured}, configures ${t.configures}, twice ${t.configuredMoreThanOnce}; audit: missing ${c.missing.length}, unseen configures ${c.unseenConfigures.length}, doubles visible ${c.doubles.visible}/${c.doubles.fleet}, false errors ${c.falseErrors.length} (gone instead ${c.goneAfterRestart}), servers ending in error ${c.endedAsError.length}`);
  assert.ok(t.configured > 0);
  assert.deepEqual(c.missing, [], "configured nodes missing from the audit");
  assert.deepEqual(c.unseenConfigures, [], "configures the fleet received that the audit does not show");
  assert.equal(c.doubles.visible, c.doubles.fleet);
  assert.deepEqual(c.falseErrors, [], "error records for nodes that had accepted their restart");
  assert.deepEqual(c.endedAsError, [], "servers whose latest record is an error");
}

const quarter = (run: AuditRun) => run.fleet.waitFor((r) => r.totals.configured >= N / 4, 60_000);

/** a nats-server, a fleet of N, and a directory and a CA for the daemons; stopped when the test ends */
async function setup(t: TestContext, seed: number, jetstream = false) {
  const srv = await startTestNats(t, { jetstream });
  const run = await startAuditRun(srv, N, seed);
  t.after(() => run.stop());
  return { srv, run, dir: mkdtempSync(join(tmpdir(), "cp-audit-")), ca: await makeBuiltinCa("ecdsa") };
}

test("a broker blip mid-run: the audit matches the fleet", { timeout: 180_000 }, async (t) => {
  const { srv, run, dir, ca } = await setup(t, 71);
  const file = join(dir, "audit.jsonl");
  await run.group.spawn(srv.url, daemonConfig(ca, file), "p1").ready;
  await quarter(run);
  await srv.restart(3000);
  await run.settled(90_000);
  await run.stop();
  check("broker blip", run, [file]);
});

test("a daemon SIGKILLed mid-run and started again: the audit matches the fleet", { timeout: 180_000 }, async (t) => {
  const { srv, run, dir, ca } = await setup(t, 72);
  // one audit file, as a daemon restarted by systemd appends to the one it had
  const file = join(dir, "audit.jsonl");
  const cfg = daemonConfig(ca, file);
  const first = run.group.spawn(srv.url, cfg, "p1");
  await first.ready;
  await quarter(run);
  await first.kill("SIGKILL");
  await run.group.spawn(srv.url, cfg, "p2").ready;
  await run.settled(90_000);
  await run.stop();
  check("daemon SIGKILL", run, [file]);
});

test("an HA handover (the leader SIGKILLed): the audit matches the fleet", { timeout: 180_000 }, async (t) => {
  const { srv, run, dir, ca } = await setup(t, 73, true);
  await makeBucket(srv.url, ELECTION_BUCKET, 2000);
  const files = ["p1", "p2"].map((l) => join(dir, `${l}.jsonl`));
  const members = ["p1", "p2"].map((l, i) => run.group.spawn(srv.url, daemonConfig(ca, files[i], { leader_election: true }), l));
  await Promise.all(members.map((m) => m.ready));
  await run.group.waitFor((g) => g.withRole("leader").length === 1, 15_000, "a leader");
  await quarter(run);
  await run.group.withRole("leader")[0].kill("SIGKILL");
  await run.group.waitFor((g) => g.withRole("leader").length === 1, 15_000, "a new leader");
  await run.settled(90_000);
  await run.stop();
  check("HA handover", run, files);
});
