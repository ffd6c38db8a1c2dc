/**
 * Legacy helper mode: the reference provisioner's helper interface (JSON on stdin, JSON on
 * stdout) decides instead of the policies, so users can move step by step.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

test("a helper program with the reference's JSON interface provisions the fleet", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-helper-"));
  const helper = join(dir, "helper.mjs");
  // defers nodes in unknown dcs, shuts down decommissioned ones, configures the rest; logs to stderr
  writeFileSync(
    helper,
    `#!${process.execPath}
let input = "";
process.stdin.on("data", (b) => (input += b));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const inv = JSON.parse(req.inventory);
  process.stderr.write("helper for " + req.identity + " token=" + (process.env.CHORIA_PROVISIONER_TOKEN ?? "none") + "\\n");
  if (!req.csr || !req.csr.csr.includes("BEGIN CERTIFICATE REQUEST")) { console.log(JSON.stringify({ defer: true, msg: "no csr" })); return; }
  if (inv.facts.role === "decommissioned") { console.log(JSON.stringify({ shutdown: true, msg: "decommissioned" })); return; }
  if (!["ams1","ams2","nyc1","sfo2","fra1","lon1","par1","tyo1"].includes(inv.facts.dc)) { console.log(JSON.stringify({ defer: true, msg: "unknown dc " + inv.facts.dc })); return; }
  console.log(JSON.stringify({ defer: false, msg: "Done", configuration: {
    identity: req.identity, "plugin.choria.server.provision": "false",
    "plugin.choria.middleware_hosts": "nats://broker." + inv.facts.dc + ".example.net:4222",
    "plugin.choria.country": inv.facts.country, loglevel: "info",
    "test.helper_saw_token": String(Boolean(process.env.CHORIA_PROVISIONER_TOKEN)) } }));
});
`,
  );
  chmodSync(helper, 0o755);
  const srv = await startNatsServer();
  const fleet = await startFleet({ servers: srv.url, nodes: 120, seed: 4, restartDelayMs: 50 });
  // the helper's interface is under test here, not its limit (test/policy/helper-decider.test.ts): one helper per worker
  const d = await startTestDaemon(srv.url, { helper, ca: { dir: await makeBuiltinCa() }, workers: 20, helper_concurrency: 20 }, {}, { CHORIA_PROVISIONER_TOKEN: "tok-s3cret" });
  try {
    assert.match(d.policies.current().ref.name, /^helper:helper\.mjs$/);
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled by the helper");
    const latest = latestRecords(d.records.filter((r) => r.outcome !== "error" && r.outcome !== "gone"));
    const report = fleet.report();
    let configured = 0;
    for (const node of report.nodes) {
      const rec = latest.get(node.identity)!;
      assert.equal(rec.policy?.name, "helper:helper.mjs");
      if (rec.outcome !== "configure") continue;
      configured++;
      assert.equal(node.configureCount, 1);
      assert.match(node.configuration!["plugin.choria.middleware_hosts"], /^nats:\/\/broker\.[a-z0-9]+\.example\.net:4222$/);
      assert.ok(node.certificate, "we signed the CSR: the helper gave no certificate");
      assert.equal(node.configuration!["test.helper_saw_token"], "false", "the helper does not inherit the provisioning token");
    }
    assert.ok(configured > 80, `configured ${configured}`);
    assert.ok([...latest.values()].some((r) => r.outcome === "shutdown"));
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
    assert.match(metrics, /choria_provisioner_helper_time_count\{site="default"\} [1-9]/);
    assert.match(metrics, /choria_provisioner_helper_shutdown_requests\{site="default"\} [1-9]/);
    assert.ok(!/choria_provisioner_helper_errors\{site="default"\} [1-9]/.test(metrics), "no helper errors");
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});
