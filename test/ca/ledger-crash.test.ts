/**
 * The ledger under a SIGKILL: a whole daemon in its own process provisions a simulated fleet and
 * is killed mid-run. Every certificate any node received must be in the ledger, for that node:
 * the ledger is committed before configure leaves the daemon.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/local-server.js";
import { CertificateLedger, normaliseSerial } from "../../src/ca/index.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { DaemonGroup } from "../ha/helpers.js";

let srv: LocalNatsServer | undefined;
let fleet: Fleet | undefined;
const group = new DaemonGroup();
after(async () => {
  await Promise.all(group.members.map((m) => m.kill("SIGKILL")));
  await fleet?.stop();
  await srv?.stop();
});

test("SIGKILL mid-run: every certificate a node received is in the ledger, under its identity", async () => {
  srv = await startNatsServer({});
  const caDir = await makeCa("ecdsa");
  const d = group.spawn(srv.url, { workers: 50, ca: { dir: caDir, workers: 1 } }, "p1");
  await d.ready;
  const nodes = 300;
  // replies 5-30 ms late, so the kill lands while certificates are in flight
  fleet = await startFleet({ servers: srv.url, nodes, seed: 21, restartDelayMs: 50, token: "s3cret", upgradable: false, faults: { latencyMs: [5, 30] } });
  const f = fleet;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`a third of the fleet not configured in 60 s: ${JSON.stringify(f.report().totals)}`)), 60_000);
    const check = (): void => {
      if (f.report().totals.configured < nodes / 3) return;
      clearTimeout(t);
      f.events.off("update", check);
      resolve();
    };
    f.events.on("update", check);
    check();
  });
  await d.kill("SIGKILL");
  // configures the daemon sent before it died can still be in the broker's hands
  await f.flush();
  await new Promise((r) => setTimeout(r, 200));

  const received = f.report().nodes.filter((n) => n.certificate);
  assert.ok(received.length >= nodes / 3, `nodes holding a certificate: ${received.length}`);
  assert.ok(received.length < nodes, "the kill came before the whole fleet was done, or the test proves nothing");
  const ledger = CertificateLedger.open(join(caDir, "ledger.sqlite"));
  try {
    const missing = received.filter((n) => ledger.bySerial(normaliseSerial(n.certificate!.serial))?.identity !== n.identity).map((n) => `${n.identity} ${n.certificate!.serial}`);
    assert.deepEqual(missing, [], "certificates on nodes that the ledger lacks");
    assert.ok(ledger.count() >= received.length);
  } finally {
    await ledger.close();
  }
});
