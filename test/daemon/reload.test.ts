/**
 * Hot reload mid-run: a valid change is swapped in atomically (nodes started on the old
 * version finish on it, later nodes get the new one); an invalid change keeps the running
 * version, reports file:line:col and counts a reload error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { inventoryFromFile, loadPolicySet } from "../../src/policy/index.js";
import type { ReloadStatus } from "../../src/provision/policy-manager.js";
import { REPO, fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

test("policies are hot reloaded mid-run: valid changes swap atomically, invalid ones keep the old version", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-reload-"));
  cpSync(join(REPO, "policies"), join(dir, "policies"), { recursive: true });
  cpSync(join(REPO, "rules"), join(dir, "rules"), { recursive: true });
  const policyFile = join(dir, "policies", "fleet.yaml");
  const original = readFileSync(policyFile, "utf8");
  const v1 = await loadPolicySet({ policiesDir: join(dir, "policies"), rulesDir: join(dir, "rules") });

  const N = 400;
  const srv = await startNatsServer();
  // latency keeps the run long enough to change the policy in the middle of it
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 3, restartDelayMs: 50, faults: { latencyMs: [20, 40] } });
  const d = await startTestDaemon(srv.url, { policies: join(dir, "policies"), rules: join(dir, "rules"), watch: true, workers: 8, ca: { dir: await makeBuiltinCa() }, record: join(dir, "inv") });
  try {
    assert.equal(d.policies.current().ref.hash, v1.ref.hash);
    await d.waitFor((r) => r.filter((x) => x.outcome === "configure").length >= 40, 60_000, "40 nodes on the first version");

    // a valid change: new version, production nodes log at error
    writeFileSync(policyFile, original.replace('version: "2024.06.1"', 'version: "2024.06.2"').replace("        loglevel: warn", "        loglevel: error"));
    await d.waitFor((r) => r.some((x) => x.policy?.version === "2024.06.2"), 30_000, "a decision on the new version");
    const v2 = d.policies.current().ref;
    assert.equal(v2.version, "2024.06.2");
    assert.notEqual(v2.hash, v1.ref.hash);

    // an invalid change: unknown operator; the running version stays
    const beforeBad = d.records.length;
    writeFileSync(policyFile, original.replace('version: "2024.06.1"', 'version: "2024.06.3"').replace("operator: equal, value: production", "operator: equalz, value: production"));
    const failed = await new Promise<ReloadStatus>((resolve) => d.policies.on("reload", (st: ReloadStatus) => !st.ok && resolve(st)));
    assert.match(failed.error!, /fleet\.yaml:\d+:\d+/);
    const status = (await (await fetch(`${d.admin.url}/status`)).json()) as { lastReloadError: { error: string } };
    assert.match(status.lastReloadError.error, /fleet\.yaml:\d+:\d+/, "/status shows the reload error");
    assert.equal(d.policies.current().ref.hash, v2.hash, "the valid version keeps running");
    await d.waitFor((r) => r.length > beforeBad + 20, 60_000, "provisioning carries on after a bad reload");

    await d.waitFor((r) => fleetHandled(r, fleet), 120_000, "every node handled");
    const policy2 = await loadPolicySet({ policiesDir: join(dir, "policies"), rulesDir: join(dir, "rules") }).catch(() => undefined);
    assert.equal(policy2, undefined, "the file on disk is still the broken one");

    // every node was decided by exactly one version, and got that version's configuration
    writeFileSync(policyFile, original.replace('version: "2024.06.1"', 'version: "2024.06.2"').replace("        loglevel: warn", "        loglevel: error"));
    const versions = { "2024.06.1": v1, "2024.06.2": await loadPolicySet({ policiesDir: join(dir, "policies"), rulesDir: join(dir, "rules") }) };
    // a good reload after the bad one: /status no longer reports the old error
    assert.equal((await d.reload()).ok, true);
    const healed = (await (await fetch(`${d.admin.url}/status`)).json()) as { lastReloadError?: unknown; lastReload: { ok: boolean } };
    assert.equal(healed.lastReload.ok, true);
    assert.equal(healed.lastReloadError, undefined, "lastReloadError cleared by a good reload");
    const report = fleet.report();
    const byVersion: Record<string, number> = {};
    for (const r of latestRecords(d.records).values()) {
      if (r.outcome !== "configure") continue;
      const v = r.policy!.version as keyof typeof versions;
      assert.ok(versions[v], `unexpected version ${v}`);
      byVersion[v] = (byVersion[v] ?? 0) + 1;
      assert.equal(r.policy!.hash, versions[v].ref.hash);
      const node = report.nodes.find((n) => n.identity === r.identity)!;
      const expected = await versions[v].evaluate(inventoryFromFile(join(dir, "inv", `${r.identity}.json`)));
      assert.deepEqual(node.configuration, expected.configuration, `${r.identity} decided by ${v}`);
    }
    assert.ok(byVersion["2024.06.1"] > 0 && byVersion["2024.06.2"] > 0, JSON.stringify(byVersion));
    assert.equal(report.totals.configuredMoreThanOnce, 0);
    const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
    assert.match(metrics, /choria_provisioner_policy_reloads\{site="default",result="error"\} [1-9]/);
    assert.match(metrics, /choria_provisioner_policy_reloads\{site="default",result="ok"\} [2-9]/);
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});


test("test_on_reload: a version whose own policy tests fail is not put in force", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-reload-tests-"));
  cpSync(join(REPO, "policies"), join(dir, "policies"), { recursive: true });
  cpSync(join(REPO, "rules"), join(dir, "rules"), { recursive: true });
  cpSync(join(REPO, "inventories"), join(dir, "inventories"), { recursive: true });
  const policyFile = join(dir, "policies", "fleet.yaml");
  const original = readFileSync(policyFile, "utf8");
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { policies: join(dir, "policies"), rules: join(dir, "rules"), test_on_reload: true, ca: { dir: await makeBuiltinCa() } });
  try {
    const good = d.policies.current().ref;
    // valid YAML and a valid policy, but the shipped tests expect production nodes at loglevel warn
    writeFileSync(policyFile, original.replace("        loglevel: warn", "        loglevel: error"));
    const st = await d.reload();
    assert.equal(st.ok, false);
    assert.match(st.error!, /policy test failed/);
    assert.equal(d.policies.current().ref.hash, good.hash, "the tested version stays in force");
    writeFileSync(policyFile, original.replace('version: "2024.06.1"', 'version: "2024.06.9"'));
    const ok = await d.reload();
    assert.equal(ok.ok, true, ok.error);
    assert.equal(d.policies.current().ref.version, "2024.06.9");
  } finally {
    await d.stop(2000);
    await srv.stop();
  }
});

test("test_on_reload finds tests/ beside policies/, or the policy_tests directory; without tests it says so and does not start", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-reload-testsdir-"));
  mkdirSync(join(dir, "policies"));
  cpSync(join(REPO, "policies", "fleet.yaml"), join(dir, "policies", "fleet.yaml"));
  cpSync(join(REPO, "rules"), join(dir, "rules"), { recursive: true });
  cpSync(join(REPO, "inventories"), join(dir, "inventories"), { recursive: true });
  // the shipped fleet tests, moved from policies/tests/ to tests/ beside policies/
  const tests = readFileSync(join(REPO, "policies", "tests", "fleet.test.yaml"), "utf8")
    .replace("policiesDir: ..", "policiesDir: ../policies")
    .replace("rulesDir: ../../rules", "rulesDir: ../rules")
    .replaceAll("../../inventories/", "../inventories/");
  mkdirSync(join(dir, "tests"));
  writeFileSync(join(dir, "tests", "fleet.test.yaml"), tests);
  const ca = await makeBuiltinCa();
  const cfg = { policies: join(dir, "policies"), rules: join(dir, "rules"), test_on_reload: true, watch: false, ca: { dir: ca } };
  const srv = await startNatsServer();
  try {
    const d = await startTestDaemon(srv.url, cfg);
    await d.stop(2000);

    // the same tests in a directory of their own, named by policy_tests
    cpSync(join(dir, "tests"), join(dir, "ci", "policy-tests"), { recursive: true });
    writeFileSync(join(dir, "ci", "policy-tests", "fleet.test.yaml"), tests.replaceAll("../", "../../"));
    rmSync(join(dir, "tests"), { recursive: true });
    const named = await startTestDaemon(srv.url, { ...cfg, policy_tests: join(dir, "ci", "policy-tests") });
    await named.stop(2000);

    await assert.rejects(startTestDaemon(srv.url, cfg), (e: Error) => {
      assert.match(e.message, /no tests found: no PolicyTest files in .*policies or .*tests; set policy_tests/);
      assert.doesNotMatch(e.message, /invalid/);
      return true;
    });
  } finally {
    await srv.stop();
  }
});
