/**
 * Many nodes in one process: `policy eval --inventories` and `policy compare --audit`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditDecisions, compareWithAudit, diffAgainstRecord, readInventoryDir } from "../../src/policy/batch.js";
import { loadPolicySet } from "../../src/policy/index.js";
import { redactConfiguration } from "../../src/provision/redact.js";
import type { Decision, DecisionRecord } from "../../src/types/index.js";

const FIXTURES = "inventories";

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "policy", ...args], { encoding: "utf8" });
}

const record = (identity: string, outcome: DecisionRecord["outcome"], configuration?: Record<string, string>): DecisionRecord => ({ identity, time: "2024-06-01T00:00:00Z", outcome, reason: "", fired: [], durations: {}, configuration });

test("eval --inventories --format jsonl: one line per node, each with its identity and file", () => {
  const r = cli("eval", "--inventories", FIXTURES, "--format", "jsonl");
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { identity: string; file: string; outcome: string; policy: { name: string } });
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).sort();
  assert.equal(lines.length, files.length);
  assert.deepEqual(lines.map((l) => l.file.split("/").at(-1)), files);
  for (const l of lines) {
    assert.equal(`${l.identity}.json`, l.file.split("/").at(-1));
    assert.ok(["configure", "defer", "shutdown", "upgrade"].includes(l.outcome));
    assert.equal(l.policy.name, "fleet");
  }
  // the same decision as evaluating the one file
  const one = JSON.parse(cli("eval", "--inventory", join(FIXTURES, "web1.example.net.json"), "--format", "json").stdout) as Decision;
  const web1 = lines.find((l) => l.identity === "web1.example.net")!;
  assert.deepEqual({ ...web1, identity: undefined, file: undefined }, { ...one, identity: undefined, file: undefined });
});

test("eval --inventories: a bad file is named, the rest are evaluated, exit 2", () => {
  const dir = mkdtempSync(join(tmpdir(), "batch-bad-"));
  copyFileSync(join(FIXTURES, "web1.example.net.json"), join(dir, "web1.example.net.json"));
  writeFileSync(join(dir, "broken.json"), "{ not json");
  const r = cli("eval", "--inventories", dir, "--format", "jsonl");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /broken\.json:1:3/);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { identity?: string; error?: string });
  assert.equal(lines.length, 2);
  assert.ok(lines.some((l) => l.identity === "web1.example.net"));
  assert.ok(lines.some((l) => l.error && /broken\.json/.test(l.error)));
});

test("eval needs exactly one of --inventory and --inventories, and a directory that exists", () => {
  assert.match(cli("eval").stderr, /exactly one of --inventory <file> or --inventories <dir>/);
  assert.match(cli("eval", "--inventory", "x.json", "--inventories", FIXTURES).stderr, /exactly one of/);
  const r = cli("eval", "--inventories", "/nonexistent/inv");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /\/nonexistent\/inv: no such directory/);
});

test("the audit log's latest decision per node counts; error and refused records decide nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), "batch-audit-"));
  const file = join(dir, "decisions.jsonl");
  // the audit's other lines (a configure request, an arrival verdict, an operator action) are no decision
  const others = [
    { kind: "configuring", identity: "d", time: "2026-01-01T00:00:00.000Z", attempt: 1, decision: { time: "2026-01-01T00:00:00.000Z" } },
    { kind: "arrival", identity: "a", time: "2026-01-01T00:00:01.000Z", result: "arrived", decision: { time: "2026-01-01T00:00:00.000Z" }, brokers: [] },
    { kind: "operator_action", identity: "b", time: "2026-01-01T00:00:02.000Z", action: "retry", operator: "me", from: "127.0.0.1", result: "done", message: "" },
  ];
  writeFileSync(file, [record("a", "defer"), record("a", "configure"), record("b", "configure"), record("b", "error"), record("c", "refused"), ...others].map((r) => JSON.stringify(r)).join("\n") + "\n");
  const m = auditDecisions(file);
  assert.deepEqual([...m.keys()], ["a", "b"]);
  assert.equal(m.get("a")!.outcome, "configure");
  assert.equal(m.get("b")!.outcome, "configure");
  writeFileSync(file, JSON.stringify(record("a", "defer")) + "\n{oops\n");
  assert.throws(() => auditDecisions(file), /decisions\.jsonl:2: not a JSON decision record/);
});

test("a redacted value is compared for presence only and never printed", () => {
  const d = { outcome: "configure", configuration: { a: "1", "plugin.x.password": "hunter2" } } as unknown as Decision;
  assert.deepEqual(diffAgainstRecord(record("n", "configure", { a: "1", "plugin.x.password": "[redacted]" }), d, redactConfiguration), []);
  const changes = diffAgainstRecord(record("n", "configure", { a: "2" }), d, redactConfiguration);
  assert.deepEqual(changes, [
    { key: "configuration.a", from: "2", to: "1" },
    { key: "configuration.plugin.x.password", from: undefined, to: "[redacted]" },
  ]);
  assert.deepEqual(diffAgainstRecord(record("n", "defer"), d), [{ key: "outcome", from: "defer", to: "configure" }]);
});

test("compare lists exactly the nodes whose live decision differs from the policy's", async () => {
  const set = await loadPolicySet({ policiesDir: "policies", rulesDir: "rules", policy: "fleet" });
  const dir = mkdtempSync(join(tmpdir(), "batch-compare-"));
  const records: DecisionRecord[] = [];
  for (const e of readInventoryDir(FIXTURES)) {
    const d = await set.evaluate(e.inventory!);
    const id = e.inventory!.identity;
    // db1: the helper said something else; lab1: the helper configured what the policy defers
    if (id === "db1.example.net") records.push(record(id, d.outcome, redactConfiguration({ ...d.configuration, loglevel: "debug" })));
    else if (id === "lab1.example.net") records.push(record(id, "configure", { loglevel: "info" }));
    else records.push(record(id, d.outcome, d.outcome === "configure" ? redactConfiguration(d.configuration) : undefined));
  }
  records.push(record("gone.example.net", "configure", {}));
  const audit = join(dir, "decisions.jsonl");
  writeFileSync(audit, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const r = await compareWithAudit(set, audit, FIXTURES, redactConfiguration);
  assert.deepEqual(r.differ.map((x) => x.identity), ["db1.example.net", "lab1.example.net"]);
  assert.deepEqual(r.differ[0]!.changes, [{ key: "configuration.loglevel", from: "debug", to: "info" }]);
  assert.equal(r.differ[1]!.now.outcome, "defer");
  assert.deepEqual(r.noInventory, ["gone.example.net"]);
  assert.equal(r.compared, readdirSync(FIXTURES).length);

  const text = cli("compare", "--audit", audit, "--inventories", FIXTURES, "--exit-code");
  assert.equal(text.status, 1, text.stderr);
  assert.match(text.stdout, /^db1\.example\.net: live configure, policy configure\n  configuration\.loglevel: "debug" -> /m);
  assert.match(text.stdout, /^lab1\.example\.net: live configure, policy defer$/m);
  assert.match(text.stdout, /2 of 9 nodes differ; 1 audited node had no inventory in the directory/);
  assert.equal(cli("compare", "--audit", join(dir, "nope.jsonl"), "--inventories", FIXTURES).stderr.trim().split("\n").at(-1), `choria-provisioner: ${join(dir, "nope.jsonl")}: file not found`);
});
