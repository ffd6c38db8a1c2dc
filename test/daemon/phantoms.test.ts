/**
 * Announcements for servers that do not exist cost milliseconds, not a worker for seconds: the
 * broker's no-responders status ends the first request to an absent node at once. Measured as a
 * ratio in one run: a fleet behind 2,000 phantom startup events against the same size of fleet
 * without them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectNats, closeNats, startNatsServer } from "../../src/transport/index.js";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../../src/protocol/index.js";
import { startFleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { fleetHandled, latestRecords, startTestDaemon, type TestDaemon } from "../helpers/daemon.js";

const NODES = 500;
const PHANTOMS = 2000;

/** seconds from start until every node of a fresh fleet (its own domain) is handled */
async function fleetSeconds(d: TestDaemon, url: string, domain: string, seed: number, before?: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await before?.();
  const fleet = await startFleet({ servers: url, nodes: NODES, seed, domain, restartDelayMs: 50, upgradable: false });
  // the latest record of each of this fleet's nodes, kept up incrementally: scanning every record
  // on every new one would cost the test more than the phantoms cost the daemon
  const mine = new Map<string, DecisionRecord>();
  let seen = 0;
  try {
    await d.waitFor((r) => {
      for (; seen < r.length; seen++) if (r[seen].identity.endsWith(`.${domain}`)) mine.set(r[seen].identity, r[seen]);
      return fleetHandled(mine, fleet);
    }, 120_000, `the ${domain} fleet handled`);
    return (performance.now() - t0) / 1000;
  } finally {
    await fleet.stop();
  }
}

test("2,000 phantom startup events slow a 500-node fleet behind them by at most 25%", async () => {
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, discovery: { interval: "1h", at_start: false } });
  const pub = await connectNats({ servers: srv.url, name: "phantom-publisher" });
  try {
    const announce = async (ids: string[]): Promise<void> => {
      for (const id of ids) pub.publish(lifecycleSubject("startup", "provision_mode_server"), encodeLifecycle(newLifecycleEvent("startup", id, "provision_mode_server")));
      await pub.flush();
    };
    // warm the daemon (JIT of both paths, key pool) so neither measured run pays for a cold start
    await fleetSeconds(d, srv.url, "warm.example.net", 1, () => announce(Array.from({ length: 200 }, (_, i) => `warm-${i}.ghost.example.net`)));
    const baseline = await fleetSeconds(d, srv.url, "base.example.net", 2);
    const phantomIds = Array.from({ length: PHANTOMS }, (_, i) => `phantom-${i}.ghost.example.net`);
    const withPhantoms = await fleetSeconds(d, srv.url, "real.example.net", 3, () => announce(phantomIds));
    const latest = latestRecords(d.records);
    const phantomRecords = phantomIds.map((id) => latest.get(id));
    assert.ok(phantomRecords.every((r) => r?.outcome === "gone"), `every phantom is recorded as gone: ${JSON.stringify(phantomRecords.find((r) => r?.outcome !== "gone"))}`);
    // an absent node costs about one round trip
    const slowest = Math.max(...phantomRecords.map((r) => r!.durations.total));
    assert.ok(slowest < 1000, `a phantom held a worker for ${slowest} ms`);
    assert.ok(withPhantoms <= baseline * 1.25, `with ${PHANTOMS} phantoms the fleet took ${withPhantoms.toFixed(2)} s, without ${baseline.toFixed(2)} s`);
  } finally {
    await closeNats(pub);
    await d.stop(5000);
    await srv.stop();
  }
});
