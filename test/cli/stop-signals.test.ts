/**
 * Issue 23: every long-running command stops within a bounded time on SIGTERM even when its
 * broker is already gone (a drain that needs the broker must not hold the process), and leaves
 * none of the processes it started behind. Each test kills the broker first, then signals.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../helpers/daemon.js";
import { allGone, commandLine, descendants, exitWithin, spawnBench, spawnCli, startTestNats, type CliProcess, type Exit } from "../helpers/processes.js";
import { makeBuiltinCa } from "../helpers/ca.js";

// generous for a loaded 2-core machine: the commands' own deadlines add up to a few seconds
const BOUND_MS = 10_000;

/** SIGTERM, then: exits within the bound, and so does every process it had started */
async function terminate(t: TestContext, p: CliProcess): Promise<Exit> {
  const below = descendants(p.pid);
  const sent = performance.now();
  p.child.kill("SIGTERM");
  const exit = await exitWithin(p, BOUND_MS);
  t.diagnostic(`exited ${Math.round(performance.now() - sent)} ms after SIGTERM`);
  await allGone(below, BOUND_MS);
  return exit;
}

test("sim: SIGTERM after the broker is gone stops the fleet, writes the report and exits 0", async (t) => {
  const srv = await startTestNats(t);
  const report = join(mkdtempSync(join(tmpdir(), "cp-sigterm-sim-")), "report.json");
  const sim = spawnCli(t, ["sim", "--broker", srv.url, "--nodes", "50", "--token", "x", "--report", report]);
  await sim.output(/nodes listening on/, 60_000);
  await srv.stop();
  const exit = await terminate(t, sim);
  assert.deepEqual(exit, { code: 0, signal: null }, sim.stderr);
  assert.ok(existsSync(report), "the report is written on the way out");
});

test("run: SIGTERM after the broker is gone stops the daemon and exits 0", async (t) => {
  const srv = await startTestNats(t);
  const caDir = await makeBuiltinCa();
  const run = spawnCli(t, ["run", "--broker", srv.url, "--policies", join(REPO, "policies"), "--ca-dir", caDir, "--log-level", "info"], { CHORIA_PROVISIONER_TOKEN: "x" });
  await run.output(/admin http:\/\/127\.0\.0\.1:\d+/, 60_000);
  await srv.stop();
  const exit = await terminate(t, run);
  assert.deepEqual(exit, { code: 0, signal: null }, run.stderr);
  assert.match(run.stderr, /provisioner stopped/);
});

test("demo: SIGTERM after its nats-server is gone stops everything and exits 143", async (t) => {
  const demo = spawnCli(t, ["demo", "--nodes", "2000", "--no-progress"]);
  const broker = Number((await demo.output(/nats-server .*\(pid (\d+)\)/, 60_000))[1]);
  await demo.output(/provisioner +policy /, 120_000);
  process.kill(broker, "SIGKILL");
  await allGone([broker], BOUND_MS);
  const exit = await terminate(t, demo);
  assert.deepEqual(exit, { code: 143, signal: null }, demo.stdout + demo.stderr);
  assert.match(demo.stderr, /interrupted/);
});

test("bench: SIGTERM after its nats-server is gone stops the bench and its fleet and daemon children", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "cp-sigterm-bench-"));
  // one end-to-end run large enough to still be going when the signal comes; nothing else
  const bench = spawnBench(t, ["--nodes", "20000", "--no-bounds", "--helper-nodes", "0", "--waiting", "0", "--out", out]);
  // a progress line: the daemon child is provisioning and the fleet child has been started
  await bench.output(/\d+s settled \d+/, 180_000);
  const below = descendants(bench.pid);
  const broker = below.find((pid) => commandLine(pid).includes("nats-server"));
  assert.ok(broker, `a nats-server below the bench: ${below.map(commandLine).join(" | ")}`);
  assert.ok(below.filter((pid) => /(daemon|fleet)-child/.test(commandLine(pid))).length === 2, `the daemon and fleet children: ${below.map(commandLine).join(" | ")}`);
  process.kill(broker, "SIGKILL");
  await allGone([broker], BOUND_MS);
  const exit = await terminate(t, bench);
  assert.deepEqual(exit, { code: 143, signal: null }, bench.stderr.slice(-2000));
});
