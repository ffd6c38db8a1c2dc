/**
 * The legacy helper decider: helpers run at most `concurrency` at once, the helper's hash is
 * taken per node (an edited helper shows without a reload), and a failing helper is reported
 * with the node's identity and logged at warn by the daemon.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { helperDecider, type HelperObserver } from "../../src/policy/deciders.js";
import { helperDeciderFor } from "../../src/daemon/start.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { resolveSettings } from "../../src/config/index.js";
import type { PolicyRef } from "../../src/types/index.js";
import { inventory } from "./helpers.js";

const CONFIGURE = `{ msg: "ok", configuration: { "plugin.choria.server.provision": "false", "plugin.choria.middleware_hosts": "nats://b:4222" } }`;

function writeHelper(dir: string, body: string): string {
  const p = join(dir, "helper.mjs");
  writeFileSync(p, `#!${process.execPath}\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

const ctx = (id: string) => ({ inventory: inventory(id, {}), rawInventory: {} });

function observer(): HelperObserver & { failures: Array<[string, string]>; changes: PolicyRef[] } {
  const failures: Array<[string, string]> = [];
  const changes: PolicyRef[] = [];
  return { failures, changes, time: () => undefined, shutdownRequested: () => undefined, failed: (id, e) => failures.push([id, e]), changed: (r) => changes.push(r) };
}

test("no more than helper concurrency helpers run at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-helper-slots-"));
  const running = join(dir, "running");
  mkdirSync(running);
  // each helper marks itself running, reports how many it sees, and stays a while so overlaps show
  const helper = writeHelper(
    dir,
    `import { mkdirSync, readdirSync, rmdirSync } from "node:fs";
const me = ${JSON.stringify(running)} + "/" + process.pid;
mkdirSync(me);
const seen = readdirSync(${JSON.stringify(running)}).length;
setTimeout(() => { rmdirSync(me); console.log(JSON.stringify({ ...${CONFIGURE}, msg: String(seen) })); }, 300);
process.stdin.resume(); process.stdin.on("end", () => undefined);`,
  );
  const obs = observer();
  const d = helperDecider({ command: helper, args: [], timeoutMs: 30_000, concurrency: 2 }, obs);
  const decisions = await Promise.all(Array.from({ length: 8 }, (_, i) => d.decide(ctx(`n${i}.example.net`))));
  assert.deepEqual(obs.failures, []);
  const seen = decisions.map((x) => Number(x.reason));
  assert.ok(seen.every((n) => n >= 1 && n <= 2), `helpers running at once: ${seen.join(",")}`);
});

test("an edited helper shows in the next decision's policy ref without a reload", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-helper-hash-"));
  const helper = writeHelper(dir, `process.stdin.resume(); process.stdin.on("end", () => console.log(JSON.stringify(${CONFIGURE})));`);
  const obs = observer();
  const d = helperDecider({ command: helper, args: [], timeoutMs: 30_000 }, obs);
  const first = await d.decide(ctx("a.example.net"));
  assert.equal(first.policy.hash, d.ref.hash);
  assert.equal(obs.changes.length, 0);
  writeHelper(dir, `// edited\nprocess.stdin.resume(); process.stdin.on("end", () => console.log(JSON.stringify(${CONFIGURE})));`);
  const second = await d.decide(ctx("b.example.net"));
  assert.notEqual(second.policy.hash, first.policy.hash);
  assert.equal(second.policy.version, second.policy.hash.slice(7, 19));
  assert.deepEqual(d.ref, second.policy, "the decider's ref (/status) follows the file");
  assert.deepEqual(obs.changes, [second.policy]);
});

test("a failing helper defers the node, is counted, and logs at warn with the identity", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-helper-fail-"));
  const helper = writeHelper(dir, `process.stdin.resume(); process.stdin.on("end", () => { process.stderr.write("boom\\n"); process.exit(3); });`);
  const lines: Array<{ level: number; msg: string; identity?: string }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString())), cb()) });
  const log = pino({ level: "info" }, sink);
  const metrics = createMetrics("t", { defaultMetrics: false });
  const d = helperDeciderFor(resolveSettings({ helper, site: "t" }, {}), metrics, log);
  const dec = await d.decide(ctx("c.example.net"));
  assert.equal(dec.outcome, "defer");
  assert.match(dec.reason, /exited with 3: boom/);
  const failed = lines.find((l) => l.identity === "c.example.net");
  assert.ok(failed, JSON.stringify(lines));
  assert.equal(failed.level, 40, "warn");
  assert.match(failed.msg, /helper failed.*exited with 3/);
  assert.equal((await metrics.helperErrors.get()).values[0]?.value, 1);
});

test("helper_concurrency defaults to the number of cores", async () => {
  const { availableParallelism } = await import("node:os");
  assert.equal(resolveSettings({ helper: "/bin/true" }, {}).helperConcurrency, availableParallelism());
  assert.equal(resolveSettings({ helper: "/bin/true", helper_concurrency: 3 }, {}).helperConcurrency, 3);
});

test("an inventory nested 20,000 deep is not written to the helper (it would overflow the stack): the node is deferred, saying why", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-helper-deep-"));
  const helper = writeHelper(dir, `process.stdin.resume(); process.stdin.on("end", () => console.log(JSON.stringify(${CONFIGURE})));`);
  const obs = observer();
  const decider = helperDecider({ command: helper, args: [], timeoutMs: 10_000 }, obs);
  const deep = JSON.parse('{"k":'.repeat(20_000) + "1" + "}".repeat(20_000)) as Record<string, unknown>;
  const d = await decider.decide({ inventory: inventory("deep.example.net", {}), rawInventory: { facts: deep } });
  assert.equal(d.outcome, "defer");
  assert.equal(d.reason, "the node's inventory cannot be passed to the helper: nested more than 1000 levels deep");
  assert.deepEqual(obs.failures, [["deep.example.net", d.reason]]);
  assert.equal((await decider.decide(ctx("plain.example.net"))).outcome, "configure", "the same helper decides an ordinary node");
});
