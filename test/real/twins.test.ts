/**
 * Two real servers with one identity, as a cloned image gives: neither twin may be configured
 * (a certificate for one twin's key would go to both), and the conflict is recorded, counted and
 * shown.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, RealLab, homePolicy } from "../helpers/real-choria.js";

let lab: RealLab;
after(async () => {
  await lab?.stop();
});

test("two real servers answering as one identity: neither is configured, the conflict is recorded and counted", { skip: REAL_SKIP }, async () => {
  lab = await RealLab.start();
  const pol = lab.writePolicy("lab", homePolicy(lab));
  const daemon = await startTestDaemon(lab.provisioning.url, { ...(await lab.daemonBroker()), ...pol, ca: { dir: lab.caDir } }, {}, lab.daemonEnv());
  lab.onStop(() => daemon.stop(5000));

  const id = "clone.real.example.net";
  const a = lab.startServer(id, { dirName: "clone-a" });
  const b = lab.startServer(id, { dirName: "clone-b" });
  // and one ordinary server, to show the daemon is not stuck
  const c = lab.startServer("single.real.example.net");

  const recs = await daemon.waitFor((r) => r.some((x) => x.identity === id && x.outcome === "conflict") && r.some((x) => x.identity === c.identity && x.outcome === "configure"), 60_000, "the twins' conflict and the single server configured");
  const twin = recs.filter((x) => x.identity === id);
  // a twin that comes up while the other's flow runs ends that flow (its replies may be the wrong server's); the fresh flow sees both
  const restarted = (x: { outcome: string; reason: string }) => x.outcome === "error" && /restarted mid-flow/.test(x.reason);
  assert.ok(twin.every((x) => x.outcome === "conflict" || restarted(x)), `twins recorded as conflict: ${JSON.stringify(twin.map((x) => [x.outcome, x.reason]))}`);
  assert.equal((daemon.provisioner.status().conflicts.nodes[0] ?? {}).identity, id, "the twins are held and listed");
  for (const s of [a, b]) {
    assert.match(readFileSync(join(s.dir, "server.conf"), "utf8"), /plugin\.choria\.server\.provision = true/, `${s.dir} was not configured`);
    assert.equal(s.exitCode(), undefined);
  }
  const metrics = await daemon.metrics.registry.metrics();
  assert.match(metrics, /choria_provisioner_conflicts_total\{[^}]*step="[a-z_#]+"[^}]*\} [1-9]/);
});
