import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { diffPolicies } from "../../src/policy/diff.js";
import { reportJunit, reportTap, reportText } from "../../src/policy/report.js";
import { runPolicyTests } from "../../src/policy/testing.js";
import { HEADER, policyDir } from "./helpers.js";

const FIXTURES = resolve("inventories");

const POLICY =
  HEADER +
  `brokerSets: { eu: [eu1:4222], us: [us1:4222] }
rules:
  - name: nl
    conditions: { all: [{ fact: facts.country, operator: equal, value: nl }] }
    then: { brokerSet: eu, configuration: { loglevel: info } }
  - name: us
    conditions: { all: [{ fact: facts.country, operator: equal, value: us }] }
    then: { brokerSet: us }
  - name: never
    conditions: { all: [{ fact: facts.country, operator: equal, value: xx }, { fact: facts.zone, operator: exists, value: true }] }
    then: { brokerSet: us }
`;

const TESTS = (expectNl: string) => `apiVersion: choria-provisioner/v1
kind: PolicyTest
metadata: { name: t }
cases:
  # the Amsterdam web node
  - name: recorded nl node
    inventory: ${join(FIXTURES, "web1.example.net.json")}
    expect: ${expectNl}
  - name: inline us node
    identity: u1.example.com
    facts: { country: us }
    expect: { outcome: configure, brokerSet: us, fired: [us] }
`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "policy", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("policy test", () => {
  it("passes the shipped example policy tests with full rule coverage", async () => {
    const run = await runPolicyTests({ dir: "policies", policiesDir: "policies", coverage: true });
    assert.deepEqual(run.problems, []);
    assert.ok(run.results.length >= 20);
    assert.deepEqual(run.results.filter((r) => !r.passed).map((r) => r.name), []);
    assert.equal(run.coverage!.rules.exercised, run.coverage!.rules.total);
  });

  it("reports each failing key with the rules and conditions behind it", async () => {
    const d = policyDir({ "policies/p.yaml": POLICY, "policies/tests/t.yaml": TESTS("{ outcome: configure, brokerSet: us, configuration: { loglevel: debug }, fired: [nl, us] }") });
    const run = await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir, coverage: true });
    const nl = run.results.find((r) => r.name === "recorded nl node")!;
    assert.equal(nl.passed, false);
    // a wrong value names the rule (or policy default) it came from
    assert.deepEqual(nl.failures, ["brokerSet: expected us, got eu", `configuration.loglevel: expected "debug", got "info" (from rule nl (${d.policiesDir}/p.yaml:8:5))`, "fired: expected us to fire, did not"]);
    assert.match(nl.explanation!, /rule us \[priority 50\].*did not match\n.*\n +✗ facts\.country equal "us": saw "nl"/);
    assert.equal(run.results.find((r) => r.name === "inline us node")!.passed, true);
    assert.deepEqual(run.coverage!.rules.missing.map((m) => m.replace(/ \(.*/, "")), ["p: never"]);
    assert.deepEqual(run.coverage!.unresolvedPaths, ["facts.zone"]);
    assert.match(reportText(run), /FAIL t \/ recorded nl node/);
    assert.match(reportJunit(run), /<testsuite name="t" tests="2" failures="1">/);
    assert.match(reportTap(run), /^not ok 1 - t \/ recorded nl node$/m);
  });

  it("exits 0 on pass, 1 on failures or low coverage, 2 on broken policies or tests", () => {
    const ok = policyDir({ "policies/p.yaml": POLICY, "policies/tests/t.yaml": TESTS("{ outcome: configure, brokerSet: eu }") });
    assert.equal(cli("test", ok.policiesDir, "--policies", ok.policiesDir).code, 0);
    assert.equal(cli("test", ok.policiesDir, "--policies", ok.policiesDir, "--threshold", "99").code, 1, "the rule 'never' is not covered");
    const failing = policyDir({ "policies/p.yaml": POLICY, "policies/tests/t.yaml": TESTS("{ outcome: defer }") });
    const f = cli("test", failing.policiesDir, "--policies", failing.policiesDir);
    assert.equal(f.code, 1);
    assert.match(f.out, /outcome: expected defer, got configure/);
    const broken = policyDir({ "policies/p.yaml": POLICY.replace("operator: exists", "operator: exist"), "policies/tests/t.yaml": TESTS("{ outcome: configure }") });
    const b = cli("test", broken.policiesDir, "--policies", broken.policiesDir, "--format", "junit");
    assert.equal(b.code, 2);
    assert.match(b.out, /unknown operator &quot;exist&quot;/);
    const badTest = policyDir({ "policies/p.yaml": POLICY, "policies/tests/t.yaml": TESTS("{ outcome: maybe }") });
    assert.equal(cli("test", badTest.policiesDir, "--policies", badTest.policiesDir).code, 2);
  });

  it("--update fills only empty expectations and keeps comments; a failing case stays failing and is named", async () => {
    const d = policyDir({ "policies/p.yaml": POLICY, "policies/tests/t.yaml": TESTS("{}").replace("fired: [us] }", "fired: [nl] }") });
    const file = join(d.policiesDir, "tests/t.yaml");
    const r = cli("test", d.policiesDir, "--policies", d.policiesDir, "--update");
    assert.equal(r.code, 1, "the failing case still fails");
    assert.match(r.err, /^filled +\S+t\.yaml:6 t \/ recorded nl node$/m);
    assert.match(r.err, /^FAILING, NOT UPDATED +\S+t\.yaml:\d+ t \/ inline us node: fired: expected nl to fire, did not; fired: us fired, not expected/m);
    assert.match(r.err, /updated 1 case: 1 empty filled, 0 failing rewritten/);
    const text = readFileSync(file, "utf8");
    assert.match(text, /# the Amsterdam web node/);
    assert.match(text, /brokerSet: eu/);
    assert.match(text, /fired: \[ ?nl ?\] \}/, "the failing expectation is as the user wrote it");
  });

  it("--update=all rewrites failing cases loudly, keeping every key the user wrote and configurationMatch", async () => {
    const d = policyDir({
      "policies/p.yaml": POLICY,
      "policies/tests/t.yaml": TESTS("{ outcome: configure, brokerSet: us, configurationMatch: exact, configuration: { loglevel: debug, identity: web1.example.net } }"),
    });
    const file = join(d.policiesDir, "tests/t.yaml");
    const r = cli("test", d.policiesDir, "--policies", d.policiesDir, "--update=all");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^REWROTE A FAILING CASE \S+t\.yaml:6 t \/ recorded nl node: .*it failed with: brokerSet: expected us, got eu/m);
    assert.match(r.err, /updated 1 case: 0 empty filled, 1 failing rewritten/);
    assert.doesNotMatch(r.err, /inline us node/, "a passing case is left alone");
    const run = await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir });
    assert.deepEqual(run.results.map((x) => x.passed), [true, true]);
    const text = readFileSync(file, "utf8");
    assert.match(text, /configurationMatch: exact/);
    assert.match(text, /brokerSet: eu/);
    assert.doesNotMatch(text, /recorded nl node[\s\S]*fired:[\s\S]*inline us node/, "no key the user did not write is added");
    assert.match(text, /expect: \{ outcome: configure, brokerSet: us, fired: \[ ?us ?\] \}/, "the passing case keeps what it had");
    assert.equal(cli("test", d.policiesDir, "--update=some").code, 2);
  });
});

/** POLICY committed as v1 in a git repository of its own: the worktree is the change */
function committedPolicyDir(): ReturnType<typeof policyDir> {
  const d = policyDir({ "policies/p.yaml": POLICY });
  const git = (...a: string[]) => execFileSync("git", a, { cwd: d.root, stdio: "pipe" });
  git("init", "-q");
  git("add", ".");
  git("-c", "user.name=t", "-c", "user.email=t@example.net", "commit", "-qm", "v1");
  return d;
}

describe("policy diff", () => {
  it("names the broker sets a change introduces: a set's brokers changed count as a new set, since nothing arrived there yet", async () => {
    const d = committedPolicyDir();
    writeFileSync(join(d.policiesDir, "p.yaml"), POLICY.replace("eu: [eu1:4222]", "eu: [eu1-typo:4222]"));
    const r = await diffPolicies({ from: "HEAD", inventoriesDir: FIXTURES, policiesDir: d.policiesDir });
    assert.ok(r.changed.length > 0);
    assert.deepEqual(r.introducedBrokerSets.map((b) => [b.name, b.brokers]), [["eu", ["eu1-typo:4222"]]]);
    assert.equal(r.introducedBrokerSets[0]!.nodes, r.changed.filter((c) => c.changes.some((k) => k.key === "brokers")).length);
    const text = cli("diff", "--from", "HEAD", "--inventories", FIXTURES, "--policies", d.policiesDir);
    assert.match(text.out, /broker sets this change introduces \(the canary guards them\):\n  eu \[eu1-typo:4222\]: \d+ nodes?/);
  });

  it("lists every node whose decision changes between a git ref and the worktree, key by key", async () => {
    const d = committedPolicyDir();
    writeFileSync(join(d.policiesDir, "p.yaml"), POLICY.replace("then: { brokerSet: eu, configuration: { loglevel: info } }", "then: { brokerSet: eu, configuration: { loglevel: warn } }"));
    const r = await diffPolicies({ from: "HEAD", inventoriesDir: FIXTURES, policiesDir: d.policiesDir });
    assert.notEqual(r.from.hash, r.to.hash);
    assert.ok(r.nodes >= 5);
    // every nl fixture changes, nothing else does
    const nl = ["lab1.example.net", "web1.example.net"];
    assert.deepEqual(r.changed.map((c) => c.identity).sort(), nl);
    assert.deepEqual(r.changed[0]!.changes, [{ key: "configuration.loglevel", from: "info", to: "warn" }]);
    assert.deepEqual(r.introducedBrokerSets, [], "the same broker sets as before");
    const same = await diffPolicies({ from: "HEAD", to: "HEAD", inventoriesDir: FIXTURES, policiesDir: d.policiesDir });
    assert.deepEqual(same.changed, []);
    await assert.rejects(diffPolicies({ from: "no-such-ref", inventoriesDir: FIXTURES, policiesDir: d.policiesDir }), /no-such-ref/);
  });
});
