/**
 * A daemon killed with SIGKILL mid-run and started again finishes the fleet within seconds of
 * its restart, with every interval at its default: it discovers at start, and nodes it had in
 * flight (their provisioning lock is keyed on our constant caller id) are worked on again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectNats, closeNats } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { startTestNats } from "../helpers/processes.js";
import { CLI } from "../helpers/cli.js";
import { REPO } from "../helpers/daemon.js";

const N = 300;

function startRun(config: string): { child: ChildProcess; started: Promise<number> } {
  const child = spawn(process.execPath, [...CLI, "run", "--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  let text = "";
  const started = new Promise<number>((resolve, reject) => {
    child.stderr!.on("data", (b: Buffer) => {
      text += b.toString();
      if (text.includes('"msg":"provisioner started"')) resolve(performance.now());
    });
    child.once("exit", (code) => reject(new Error(`run exited with ${code}: ${text.slice(-2000)}`)));
  });
  return { child, started };
}

test("after a SIGKILL and a restart every node is done within 10 s of the restart", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cp-kill-"));
  const ca = spawnSync(process.execPath, [...CLI, "ca", "init", "--dir", join(dir, "ca")], { encoding: "utf8" });
  assert.equal(ca.status, 0, ca.stderr);
  const srv = await startTestNats(t);
  const config = join(dir, "provisioner.yaml");
  // every interval at its default; the audit records come to the test on a subject
  writeFileSync(config, [`broker: ${srv.url}`, `policies: ${join(REPO, "policies")}`, "ca:", "  dir: ./ca", "workers: 50", "admin:", "  listen: 127.0.0.1:0", "audit:", "  subject: test.audit", ""].join("\n"));
  const nc = await connectNats({ servers: srv.url, name: "audit-reader" });
  t.after(() => closeNats(nc));
  const records: DecisionRecord[] = [];
  let onRecord = (): void => undefined;
  nc.subscribe("test.audit", { callback: (_e, m) => (records.push(JSON.parse(new TextDecoder().decode(m.data)) as DecisionRecord), onRecord()) });
  await nc.flush();
  const first = startRun(config);
  t.after(() => void (first.child.exitCode === null && first.child.kill("SIGKILL")));
  await first.started;
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 51, restartDelayMs: 50, upgradable: false, faults: { latency: 1, latencyMs: [20, 80] } });
  t.after(() => fleet.stop());
  await fleet.waitFor((r) => r.totals.provisioned >= N / 4, 60_000);
  first.child.kill("SIGKILL");
  await new Promise((r) => first.child.once("exit", r));
  const second = startRun(config);
  t.after(() => void (second.child.exitCode === null && second.child.kill("SIGTERM")));
  const restartedAt = await second.started;
  // done, as the fleet sees it: every node has left provisioning mode, or its latest decision is to defer it
  const latest = new Map<string, DecisionRecord>();
  const waiting = (r: ReturnType<typeof fleet.report>) => {
    for (const rec of records.splice(0)) latest.set(rec.identity, rec);
    return r.nodes.filter((n) => (n.mode === "provisioning" || n.mode === "restarting") && latest.get(n.identity)?.outcome !== "defer");
  };
  onRecord = () => fleet.events.emit("update");
  await fleet.waitFor((r) => waiting(r).length === 0, 60_000).catch((e: Error) => {
    const left = waiting(fleet.report());
    throw new Error(`${e.message}: ${left.length} nodes left, e.g. ${left.slice(0, 3).map((n) => `${n.identity} ${n.mode}: ${JSON.stringify(latest.get(n.identity) ?? "no record")}`).join("; ")}`);
  });
  const seconds = (performance.now() - restartedAt) / 1000;
  assert.ok(seconds <= 10, `every node was done ${seconds.toFixed(1)} s after the restart`);
});
