/**
 * Recovery does not wait for discovery: with every interval at its default (discovery each
 * 60 s, the provisioning actions' 22 s timeouts), a broker outage mid-run ends with every node
 * done within seconds of the broker's return.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, type Fleet, type FleetOptions } from "../../src/sim/index.js";
import { defaultFlowOptions } from "../../src/provision/flow-options.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { fleetHandled, latestRecords, startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import type { ConfigFile } from "../../src/config/index.js";
import type { FlowOptions } from "../../src/provision/flow.js";

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

/**
 * A broker and a daemon with a built-in CA on it, and `fleet()` for the simulated fleet; all of
 * them are stopped when the test ends, however it ends: daemon first, then fleet, then broker.
 */
async function outageRig(t: TestContext, cfg: ConfigFile, flow: Partial<FlowOptions> = {}): Promise<{ srv: LocalNatsServer; d: TestDaemon; fleet(o: Omit<FleetOptions, "servers">): Promise<Fleet> }> {
  const srv = await startNatsServer();
  let d: TestDaemon | undefined;
  const fleets: Fleet[] = [];
  t.after(async () => {
    await d?.stop(5000);
    for (const f of fleets) await f.stop();
    await srv.stop();
  });
  d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, ...cfg }, flow);
  return {
    srv,
    d,
    async fleet(o) {
      const f = await startFleet({ servers: srv.url, restartDelayMs: 50, upgradable: false, ...o });
      fleets.push(f);
      return f;
    },
  };
}

test("after a 3 s broker outage mid-run every node is done within 5 s of the broker's return", async (t) => {
  const N = 300;
  const rig = await outageRig(t, DEFAULT_INTERVALS, { backoff: defaultFlowOptions().backoff });
  const { srv, d } = rig;
  const fleet = await rig.fleet({ nodes: N, seed: 41, faults: { latency: 1, latencyMs: [20, 60] } });
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
});

test("a node whose restart request was lost on the way is provisioned again after its hold, without waiting for discovery", async (t) => {
  // discovery only at start: nothing but the retry after the hold can find these nodes again
  const rig = await outageRig(t, { discovery: { interval: "10m", at_start: true }, hold_after_restart: "1s", rpc: { provision_timeout: "1s", max_timeouts: 1 } });
  const { d } = rig;
  const fleet = await rig.fleet({ nodes: 12, seed: 7, faults: { loseFirstRestart: 0.5 } });
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
});

test("nodes whose announcements were lost with the broker are found by a discovery soon after it returns, not at the next cycle", async (t) => {
  const rig = await outageRig(t, { discovery: { interval: "10m", at_start: true } });
  const { srv, d } = rig;
  await srv.restart(1000);
  // these nodes came up while the daemon was away: their startup events reached nobody
  const fleet = await rig.fleet({ nodes: 20, seed: 9, announce: false });
  await d.waitFor((r) => fleetHandled(r, fleet), 30_000, "every node found and handled after the outage");
  for (const r of latestRecords(d.records).values()) assert.equal(r.outcome, "configure", `${r.identity}: ${r.reason}`);
});
