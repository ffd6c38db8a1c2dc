import "reflect-metadata";
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flowRequests, measureRpcRate, runE2e, runEssential } from "../../bench/e2e.js";
import { measureNodeWork } from "../../bench/node-work.js";
import { initBuiltinCa } from "../../src/ca/index.js";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// `npm run bench` is not part of CI; these keep its parts working (small and short, so they
// check plumbing and accounting, not speed).
describe("benchmark harness", () => {
  const caDir = mkdtempSync(join(tmpdir(), "bench-harness-"));
  before(() => initBuiltinCa(caDir, { key: "ecdsa" }));
  after(() => rmSync(caDir, { recursive: true, force: true }));

  test("the RPC bound's requests are what the daemon sends for a configured node", async () => {
    const calls = await flowRequests(caDir);
    assert.deepEqual(calls.map((c) => `${c.agent}#${c.action}`), ["rpcutil#inventory", "choria_provision#gencsr", "choria_provision#configure", "choria_provision#restart"]);
    const cfg = calls[2]!.data;
    assert.match(String(cfg.certificate), /^-----BEGIN CERTIFICATE-----/);
    assert.match(String(cfg.ca), /^-----BEGIN CERTIFICATE-----/);
    assert.ok(Object.keys(JSON.parse(String(cfg.config))).length > 3, "a real configuration, not an empty one");
  });

  test("provisioning-shaped RPC bound and node work report rates and CPU per unit", async () => {
    const rpc = await measureRpcRate({ seconds: 0.3, window: 16, flow: await flowRequests(caDir) });
    assert.equal(rpc.shape, "flow");
    assert.ok(rpc.rpcs >= 4 && rpc.rpcsPerSec > 0, JSON.stringify(rpc));
    assert.ok(rpc.cpuMsPerRpc > 0 && rpc.responderCpuS > 0, JSON.stringify(rpc));
    const node = await measureNodeWork({ caDir, seconds: 0.2 });
    assert.ok(node.nodes > 0 && node.cpuMsPerNode > 0, JSON.stringify(node));
  });

  test("a small end-to-end run settles every node with no protocol violation", async () => {
    const r = await runE2e({ nodes: 150, caDir });
    assert.equal(r.daemon.settled, 150);
    assert.equal(r.fleet.totals.violations, 0);
    assert.equal(r.fleet.totals.configuredMoreThanOnce, 0);
    assert.ok(r.nodesPerMin > 0 && r.provisionerCpuS > 0 && r.fleet.cpuS > 0, JSON.stringify({ npm: r.nodesPerMin, cpu: r.provisionerCpuS }));
    assert.ok(r.daemon.signs >= r.daemon.outcomes.configure!, "every configured node had its certificate signed");
  });

  test("the essential-work provisioner takes the same fleet through the same outcomes", async () => {
    const r = await runEssential({ nodes: 150, caDir, workers: 20 });
    assert.equal(r.done, 150);
    assert.equal(r.failed, 0);
    assert.equal(r.violations, 0, "the fleet saw nothing a real server would reject");
    assert.equal(Object.values(r.outcomes).reduce((a, b) => a + b, 0), 150);
    assert.ok((r.outcomes.configure ?? 0) > 100, JSON.stringify(r.outcomes));
    assert.ok(r.nodesPerMin > 0 && r.provisionerCpuS > 0 && r.fleetCpuS > 0);
  });

  test("with the shipped code, a bench child takes the product's modules from dist/ and its own from bench/", () => {
    const repo = fileURLToPath(new URL("../../", import.meta.url));
    const where = (hook: string[]) => {
      const r = spawnSync(process.execPath, ["--import", "tsx", ...hook, "--input-type=module", "-e", "console.log(import.meta.resolve('./src/daemon/version.js'), import.meta.resolve('./bench/harness.js'))"], { cwd: repo, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim().split(" ");
    };
    assert.deepEqual(where([]), [`file://${repo}src/daemon/version.ts`, `file://${repo}bench/harness.ts`]);
    assert.deepEqual(where(["--import", "./bench/shipped-code.mjs"]), [`file://${repo}dist/daemon/version.js`, `file://${repo}bench/harness.ts`]);
  });
});
