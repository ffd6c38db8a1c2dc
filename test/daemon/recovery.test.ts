/**
 * Recovery does not wait for discovery: with every interval at its default (discovery each
 * 60 s, the provisioning actions' 22 s timeouts), a broker outage mid-run ends with every node
 * done within seconds of the broker's return.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { defaultFlowOptions } from "../../src/provision/flow-options.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";

/** the settings startTestDaemon shortens, back at their defaults */
export const DEFAULT_INTERVALS = { discovery: { interval: "60s", timeout: "2s", quiet: "300ms", at_start: true }, hold_after_restart: "10s", rpc: {} };

test("after a 3 s broker outage mid-run every node is done within 5 s of the broker's return", async () => {
  const N = 300;
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, ...DEFAULT_INTERVALS }, { backoff: defaultFlowOptions().backoff });
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 41, restartDelayMs: 50, upgradable: false, faults: { latency: 1, latencyMs: [20, 60] } });
  try {
    const started = performance.now();
    await d.waitFor((r) => r.filter((x) => x.outcome === "configure").length >= N / 4, 60_000, "a quarter of the fleet configured");
    // the work left after the outage takes what it takes on this machine: the bound is 5 s of
    // recovery plus that work at the pace the first quarter went (next to nothing when idle)
    const perNode = (performance.now() - started) / 1000 / (N / 4);
    await srv.restart(3000);
    const back = performance.now();
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled after the outage");
    const seconds = (performance.now() - back) / 1000;
    const work = perNode * (N - N / 4);
    assert.ok(seconds <= 5 + work, `every node was done ${seconds.toFixed(1)} s after the broker came back (allowed 5 s + ${work.toFixed(1)} s of work left)`);
    const configured = [...latestRecords(d.records).values()].filter((r) => r.outcome === "configure").length;
    const report = await fleet.waitFor((r) => r.totals.provisioned >= configured, 10_000);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});
