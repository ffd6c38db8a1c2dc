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
import type { DecisionRecord } from "../../src/types/index.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";

/** the settings startTestDaemon shortens, back at their defaults */
export const DEFAULT_INTERVALS = { discovery: { interval: "60s", timeout: "2s", quiet: "300ms", at_start: true }, hold_after_restart: "10s", rpc: {} };

/** the nodes settled only after the bound, each with its records: what the failure needs to be read */
function lateNodes(records: DecisionRecord[], boundEpochMs: number): string {
  const late = [...latestRecords(records).values()].filter((r) => Date.parse(r.time) > boundEpochMs).map((r) => r.identity);
  const history = (id: string) =>
    records
      .filter((r) => r.identity === id)
      .map((r) => `${r.time.slice(11, 23)} ${r.outcome}: ${r.error ?? r.reason}`)
      .join(" | ");
  return `${late.length} node(s) settled late: ${late.slice(0, 5).map((id) => `${id} [${history(id)}]`).join("; ")}`;
}

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
    assert.ok(seconds <= 5 + work, `every node was done ${seconds.toFixed(1)} s after the broker came back (allowed 5 s + ${work.toFixed(1)} s of work left); ${lateNodes(d.records, Date.now() - (performance.now() - back) + (5 + work) * 1000)}`);
    const configured = [...latestRecords(d.records).values()].filter((r) => r.outcome === "configure").length;
    const report = await fleet.waitFor((r) => r.totals.provisioned >= configured, 10_000);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});

test("a node whose restart request was lost on the way is provisioned again after its hold, without waiting for discovery", async () => {
  const srv = await startNatsServer();
  // discovery only at start: nothing but the retry after the hold can find these nodes again
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, discovery: { interval: "10m", at_start: true }, hold_after_restart: "1s", rpc: { provision_timeout: "1s", max_timeouts: 1 } });
  const fleet = await startFleet({ servers: srv.url, nodes: 12, seed: 7, restartDelayMs: 50, upgradable: false, faults: { loseFirstRestart: 0.5 } });
  try {
    const lost = fleet.identities.filter((id) => fleet.faultsOf(id).has("lose_first_restart"));
    assert.ok(lost.length > 0 && lost.length < 12, `${lost.length} node(s) lose their first restart`);
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled");
    const latest = latestRecords(d.records);
    for (const id of fleet.identities) assert.equal(latest.get(id)?.outcome, "configure", `${id}: ${latest.get(id)?.reason}`);
    for (const id of lost) {
      const mine = d.records.filter((r) => r.identity === id).map((r) => r.outcome);
      assert.deepEqual(mine, ["error", "configure"], `${id}: its unanswered restart, then the retry that sent it home`);
    }
    const report = await fleet.waitFor((r) => r.totals.provisioned >= 12, 10_000);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});

test("nodes whose announcements were lost with the broker are found by a discovery soon after it returns, not at the next cycle", async () => {
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, discovery: { interval: "10m", at_start: true } });
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    await srv.restart(1000);
    // these nodes came up while the daemon was away: their startup events reached nobody
    fleet = await startFleet({ servers: srv.url, nodes: 20, seed: 9, restartDelayMs: 50, upgradable: false, announce: false });
    const f = fleet;
    await d.waitFor((r) => fleetHandled(r, f), 30_000, "every node found and handled after the outage");
    for (const r of latestRecords(d.records).values()) assert.equal(r.outcome, "configure", `${r.identity}: ${r.reason}`);
  } finally {
    await d.stop(5000);
    await fleet?.stop();
    await srv.stop();
  }
});
