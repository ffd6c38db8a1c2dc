/**
 * `choria-provisioner run` as an operator starts it: a config file, secrets in the
 * environment, SIGHUP to reload, SIGTERM to drain and stop. Secrets never reach the logs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { REPO } from "../helpers/daemon.js";
import { CLI } from "../helpers/cli.js";

const TOKEN = "sup3r-s3cret-token";
const ADMIN = "adm1n-t0ken-xyz";

/** resolves when the child's stderr has printed something matching re */
function waitForOutput(c: ChildProcess, buf: { text: string }, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(buf.text);
      if (m) {
        c.stderr!.off("data", check);
        clearTimeout(t);
        resolve(m);
      }
    };
    const t = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs}ms:\n${buf.text.slice(-2000)}`)), timeoutMs);
    c.stderr!.on("data", check);
    check();
  });
}

test("run: config file, secrets from the environment, SIGHUP reload, SIGTERM drain; no secret in the logs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-run-"));
  const ca = spawnSync(process.execPath, [...CLI, "ca", "init", "--dir", join(dir, "ca")], { encoding: "utf8" });
  assert.equal(ca.status, 0, ca.stderr);
  const srv = await startNatsServer();
  writeFileSync(
    join(dir, "provisioner.yaml"),
    [`broker: ${srv.url}`, `policies: ${join(REPO, "policies")}`, "ca:", "  dir: ./ca", "workers: 20", "log:", "  level: debug", "audit:", "  file: ./audit.jsonl", "discovery:", "  interval: 2s", "hold_after_restart: 2s", ""].join("\n"),
  );
  const buf = { text: "" };
  const child = spawn(process.execPath, [...CLI, "run", "--config", join(dir, "provisioner.yaml")], {
    env: { ...process.env, CHORIA_PROVISIONER_TOKEN: TOKEN, CHORIA_PROVISIONER_ADMIN_TOKEN: ADMIN },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (b) => (buf.text += b));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const fleet = await startFleet({ servers: srv.url, nodes: 60, seed: 9, token: TOKEN, restartDelayMs: 50 });
  try {
    const admin = (await waitForOutput(child, buf, /admin (http:\/\/127\.0\.0\.1:\d+)/, 30_000))[1];
    await fleet.waitFor((r) => r.totals.provisioned >= 50, 60_000);
    assert.equal(fleet.report().totals.violationsByKind.token ?? 0, 0, "the token from the environment was sent");

    child.kill("SIGHUP");
    await waitForOutput(child, buf, /SIGHUP: reloading policies[\s\S]*policy loaded/, 20_000);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, /choria_provisioner_policy_reloads\{site="default",result="ok"\} 2/);
    assert.equal((await fetch(`${admin}/pause`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } })).status, 200);

    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(buf.text, /provisioner stopped/);
    assert.ok(!buf.text.includes(TOKEN), "the provisioning token never appears in the logs");
    assert.ok(!buf.text.includes(ADMIN), "the admin token never appears in the logs");
  } finally {
    child.kill("SIGKILL");
    await fleet.stop();
    await srv.stop();
  }
});

test("run: an invalid configuration exits 2 naming file:line:col", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-run-bad-"));
  writeFileSync(join(dir, "bad.yaml"), "broker: nats://127.0.0.1:1\nworkers: lots\n");
  const r = spawnSync(process.execPath, [...CLI, "run", "--config", join(dir, "bad.yaml")], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yaml:2:10: workers/);
});
