import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLI } from "../helpers/cli.js";
import { HEADER, policyDir } from "./helpers.js";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "policy", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("policy CLI", () => {
  it("names the problem in one line: a bad git ref, a missing inventories or policies directory, a mistyped required option", () => {
    const one = (r: { code: number | null; err: string }) => {
      assert.equal(r.code, 2);
      assert.equal(r.err.trim().split("\n").length, 1, r.err);
      return r.err;
    };
    assert.match(one(cli("diff", "--from", "nosuchref", "--inventories", "inventories")), /^choria-provisioner: git ref "nosuchref" is not a commit in \//);
    assert.match(one(cli("diff", "--from", "HEAD", "--inventories", "nope")), /^choria-provisioner: inventories directory not found: \/\S+\/nope\n$/);
    const typo = cli("eval", "--inventroy", "inventories/web1.example.net.json");
    assert.equal(typo.code, 1);
    assert.match(typo.err, /^error: unknown option '--inventroy'\n\(Did you mean --inventory\?\)/);
    const elsewhere = mkdtempSync(join(tmpdir(), "cp-nopolicies-"));
    const r = spawnSync(process.execPath, [...CLI, "policy", "check"], { cwd: elsewhere, encoding: "utf8" });
    assert.equal(one({ code: r.status, err: r.stderr }), `choria-provisioner: no policies directory at ${join(realpathSync(elsewhere), "policies")}; give the directory with --policies DIR\n`);
  });

  it("check: exit 0 on the shipped policies, exit 1 with one file:line:col line per problem", () => {
    assert.equal(cli("check").code, 0);
    const d = policyDir({
      "policies/p.yaml":
        HEADER +
        `rules:
  - name: r1
    conditions: { all: [{ fact: facts.x, operator: regex, value: a }] }
    then: { brokerSet: nope }
`,
    });
    const r = cli("check", "--policies", d.policiesDir, "--rules", d.rulesDir);
    assert.equal(r.code, 1);
    const lines = r.out.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /p\.yaml:8:52: r1: unknown operator "regex"/);
    assert.match(lines[1]!, /p\.yaml:9:24: r1: undefined broker set "nope"/);
  });

  it("eval: prints the decision, as text, json and with --explain", () => {
    const text = cli("eval", "--inventory", "inventories/web1.example.net.json");
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /outcome: +configure/);
    assert.match(text.out, /plugin\.choria\.middleware_hosts += nats:\/\/broker1\.ams\.example\.net:4222,nats:\/\/broker2\.ams\.example\.net:4222/);
    const json = JSON.parse(cli("eval", "--inventory", "inventories/retired1.example.net.json", "--format", "json").out);
    assert.equal(json.outcome, "shutdown");
    assert.equal(json.policy.name, "fleet");
    const ex = cli("eval", "--inventory", "inventories/lab1.example.net.json", "--explain");
    assert.match(ex.out, /unknown-dc .*APPLIED/);
    assert.match(ex.out, /facts\.dc in \[.*\] +saw "lab7"/);
    const exJson = JSON.parse(cli("eval", "--inventory", "inventories/lab1.example.net.json", "--explain", "--format", "json").out);
    assert.ok(exJson.explanation.length >= 20);
    assert.deepEqual(exJson.fired[0].conditions, [{ fact: "facts.dc", operator: "in", expected: ["ams1", "ams2", "nyc1", "sfo2", "fra1", "lon1", "par1", "tyo1"], actual: "lab7", result: false }]);
  });

  it("eval: clear errors for bad input, exit 2", () => {
    const missing = cli("eval", "--inventory", "nope.json");
    assert.equal(missing.code, 2);
    assert.match(missing.err, /nope\.json: file not found/);
    const broken = cli("eval", "--policies", "test/fixtures", "--inventory", "inventories/web1.example.net.json");
    assert.equal(broken.code, 2);
    assert.match(broken.err, /no Policy document found/);
  });
});
