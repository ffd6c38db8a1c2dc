/**
 * `choria-provisioner nodes` end to end: a real nats-server, a simulated fleet, the daemon
 * with a policy that asks for approval of three nodes, and the CLI as a child process over the
 * admin endpoint: list (table, JSON, JSON lines, filters), show, approve (and a changed
 * decision that needs --confirm), deny, clear, retry, forget, each audited.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { nodesCli, writeApprovalPolicy } from "./helpers.js";

const N = 12;
const TOKEN = "adm1n-t0ken";
const WAITING = ["sim-00001.example.net", "sim-00002.example.net", "sim-00003.example.net"];
let srv: LocalNatsServer;
let fleet: Fleet;
let daemon: TestDaemon;
let work: string;
let policies: string;

const last = (rs: DecisionRecord[], id: string) => rs.filter((r) => r.identity === id).at(-1);

before(async () => {
  srv = await startNatsServer();
  const caDir = await makeBuiltinCa("ecdsa");
  work = mkdtempSync(join(tmpdir(), "cp-nodes-"));
  policies = join(work, "policies");
  writeApprovalPolicy(policies, "1", "sim-0000[123].*");
  fleet = await startFleet({ servers: srv.url, nodes: N, seed: 3, restartDelayMs: 50, token: "s3cret" });
  daemon = await startTestDaemon(srv.url, { policies, ca: { dir: caDir }, audit: { file: join(work, "audit.jsonl") }, workers: 8 }, {}, { CHORIA_PROVISIONER_TOKEN: "s3cret", CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN });
  await daemon.waitFor((rs) => WAITING.every((id) => last(rs, id)?.outcome === "awaiting_approval") && rs.filter((r) => r.outcome === "configure").length >= N - WAITING.length, 60_000, "three nodes waiting, the rest configured");
});

after(async () => {
  await daemon?.stop(5000);
  await fleet?.stop();
  await srv?.stop();
});

test("nodes list shows the waiting nodes in every format and filters by state, glob, policy version and broker set", async () => {
  const url = daemon.admin.url;
  const json = await nodesCli(url, ["list", "--state", "awaiting_approval", "--format", "json"]);
  assert.equal(json.code, 0, json.stderr);
  const listed = JSON.parse(json.stdout) as { count: number; nodes: Array<{ identity: string; state: string; hold?: { reason: string }; policyVersion?: string }> };
  assert.deepEqual(listed.nodes.map((n) => n.identity).sort(), WAITING);
  assert.match(listed.nodes[0]!.hold!.reason, /new hardware sim-0000\d\.example\.net needs a look/);
  assert.equal(listed.nodes[0]!.policyVersion, "1");

  const lines = await nodesCli(url, ["list", "--identity", "sim-0001*", "--format", "jsonl"]);
  assert.equal(lines.code, 0, lines.stderr);
  const ids = lines.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { identity: string }).identity);
  assert.deepEqual(ids.sort(), ["sim-00010.example.net", "sim-00011.example.net", "sim-00012.example.net"]);

  const table = await nodesCli(url, ["list", "--broker-set", "main", "--policy-version", "1"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^IDENTITY\s+STATE\s+POLICY\s+BROKERS\s+SINCE\s+DETAIL$/m);
  assert.equal(table.stdout.trim().split("\n").length - 1, N, "every node was decided by version 1 with broker set main");
  const none = await nodesCli(url, ["list", "--policy-version", "2", "--format", "json"]);
  assert.equal(JSON.parse(none.stdout).count, 0);
});

test("nodes show gives the timeline, the rules that fired as --explain prints them, and the certificate serial", async () => {
  const url = daemon.admin.url;
  const w = await nodesCli(url, ["show", WAITING[0]!]);
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /state:\s+awaiting_approval/);
  assert.match(w.stdout, /rule new-hardware \[priority 60\] \S+ops\.yaml:\d+:\d+: APPLIED\n\s+identity glob "sim-0000\[123\]\.\*" \(saw "sim-00001\.example\.net"\)/);
  assert.match(w.stdout, /gencsr\s+ok/);
  const configured = daemon.records.find((r) => r.outcome === "configure")!;
  const c = await nodesCli(url, ["show", configured.identity, "--format", "json"]);
  const detail = JSON.parse(c.stdout) as { state: string; serial: string; timeline: Array<{ step: string; result: string }> };
  assert.equal(detail.state, "provisioned");
  assert.equal(detail.serial, configured.certificate!.serial);
  assert.deepEqual(detail.timeline.filter((t) => t.result === "ok").map((t) => t.step), ["inventory", "gencsr", "policy", "sign", "configure", "restart", "decision:configure"]);
  const missing = await nodesCli(url, ["show", "nope.example.net"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no node "nope\.example\.net"/);
});

test("approve needs the token, configures the node with its decision, and a changed decision needs --confirm", async () => {
  const url = daemon.admin.url;
  const denied = await nodesCli(url, ["approve", WAITING[0]!]);
  assert.equal(denied.code, 2);
  assert.match(denied.stderr, /needs the admin token/);
  const wrong = await nodesCli(url, ["approve", WAITING[0]!], { CHORIA_PROVISIONER_ADMIN_TOKEN: "wrong" });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /HTTP 401/);

  const ok = await nodesCli(url, ["approve", WAITING[0]!, "--operator", "alice"], { CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /sim-00001\.example\.net: done: approved with policy 1/);
  const rs = await daemon.waitFor((r) => last(r, WAITING[0]!)?.outcome === "configure", 30_000, "the approved node configured");
  assert.deepEqual(last(rs, WAITING[0]!)!.approval, { reason: "new hardware sim-00001.example.net needs a look", approvedBy: "alice" });

  // a new policy version decides differently for the waiting node: the operator is told
  writeApprovalPolicy(policies, "2", "sim-0000[123].*", "debug");
  assert.equal((await daemon.reload()).ok, true);
  const changed = await nodesCli(url, ["approve", WAITING[1]!, "--operator", "bob"], { CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN });
  assert.equal(changed.code, 1);
  assert.match(changed.stdout, /changed: the decision changed since the node started waiting \(policy 1 -> 2\); check it and approve with --confirm/);
  assert.equal((await nodesCli(url, ["list", "--state", "awaiting_approval", "--identity", WAITING[1]!, "--format", "json"])).stdout.includes(WAITING[1]!), true, "still waiting");
  const confirmed = await nodesCli(url, ["approve", WAITING[1]!, "--confirm", "--operator", "bob"], { CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN });
  assert.equal(confirmed.code, 0, confirmed.stdout);
  const rs2 = await daemon.waitFor((r) => last(r, WAITING[1]!)?.outcome === "configure", 30_000, "the confirmed node configured");
  assert.equal(last(rs2, WAITING[1]!)!.configuration!.loglevel, "debug", "configured with the decision the operator confirmed");
});

test("deny holds the node until clear; retry re-queues a node now; forget drops it; each is audited", async () => {
  const url = daemon.admin.url;
  const env = { CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN };
  const noReason = await nodesCli(url, ["deny", WAITING[2]!], env);
  assert.notEqual(noReason.code, 0);
  assert.match(noReason.stderr, /--reason/);
  const d = await nodesCli(url, ["deny", WAITING[2]!, "--reason", "not our hardware", "--operator", "carol"], env);
  assert.equal(d.code, 0, d.stdout + d.stderr);
  const held = JSON.parse((await nodesCli(url, ["list", "--state", "denied", "--format", "json"])).stdout) as { nodes: Array<{ identity: string; hold: { reason: string } }> };
  assert.deepEqual(held.nodes.map((n) => n.identity), [WAITING[2]]);
  assert.match(held.nodes[0]!.hold.reason, /denied by carol: not our hardware/);
  assert.equal(daemon.provisioner.offer(WAITING[2]!, "manual"), "held", "a denied node is not queued");

  // released, the node is found again by discovery and decided again: the policy still asks for approval
  const decided = daemon.records.filter((r) => r.identity === WAITING[2]).length;
  const cleared = await nodesCli(url, ["clear", WAITING[2]!], env);
  assert.equal(cleared.code, 0, cleared.stdout);
  await daemon.waitFor((r) => r.filter((x) => x.identity === WAITING[2]).length > decided, 30_000, "the cleared node decided again");
  assert.equal(last(daemon.records, WAITING[2]!)!.outcome, "awaiting_approval");

  const target = "sim-00008.example.net";
  const before = daemon.records.filter((r) => r.identity === target).length;
  const retried = await nodesCli(url, ["retry", target], env);
  assert.equal(retried.code, 0, retried.stdout);
  await daemon.waitFor((r) => r.filter((x) => x.identity === target).length > before, 30_000, "the retried node decided again");

  const unknown = await nodesCli(url, ["retry", "nope.example.net"], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /nope\.example\.net: unknown/);

  const forgotten = await nodesCli(url, ["forget", "sim-00009.example.net"], env);
  assert.equal(forgotten.code, 0);
  assert.equal((await nodesCli(url, ["show", "sim-00009.example.net"])).code, 1);

  const audit = readFileSync(join(work, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.kind === "operator_action");
  const by = (action: string) => audit.filter((a) => a.action === action && a.result === "done");
  assert.deepEqual(by("approve").map((a) => a.operator), ["alice", "bob"]);
  assert.deepEqual(by("deny").map((a) => [a.operator, a.reason, a.identity]), [["carol", "not our hardware", WAITING[2]]]);
  assert.equal(by("deny")[0]!.from, "127.0.0.1");
  assert.equal(by("retry")[0]!.operator, "admin-token");
  for (const a of ["clear", "retry", "forget"]) assert.equal(by(a).length, 1, a);
  assert.ok(!readFileSync(join(work, "audit.jsonl"), "utf8").includes(TOKEN), "the admin token never reaches the audit log");
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^choria_provisioner_operator_actions\{site="[^"]*",action="approve",result="changed"\} 1$/m);
});
