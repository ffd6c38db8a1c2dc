import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../helpers/daemon.js";
import { CLI } from "../helpers/cli.js";

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [...CLI, ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    c.stdout.on("data", (b) => (out += b));
    c.stderr.on("data", (b) => (err += b));
    const t = setTimeout(() => {
      c.kill("SIGKILL");
      reject(new Error(`demo did not finish in ${timeoutMs}ms\n${out}\n${err}`));
    }, timeoutMs);
    c.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

test("README's main command: the demo provisions a small fleet end to end and cleans up", async () => {
  const r = await run(["demo", "--nodes", "150", "--no-progress"], 120_000);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /done in [\d.]+ s/);
  const provisioned = Number(/provisioned \(configured \+ restarted\)\s+(\d+)/.exec(r.out)?.[1]);
  assert.ok(provisioned > 100, r.out);
  assert.match(r.out, /nodes configured more than once\s+0/);
  assert.match(r.out, /protocol violations seen by the nodes\s+0/);
  const pid = Number(/\(pid (\d+)\)/.exec(r.out)?.[1]);
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), "the demo's nats-server is stopped");
  const audit = /audit log\s+(\S+)/.exec(r.out)?.[1];
  assert.ok(audit && existsSync(audit));
  const lines = readFileSync(audit, "utf8").trim().split("\n");
  assert.ok(lines.length >= 150);
});
