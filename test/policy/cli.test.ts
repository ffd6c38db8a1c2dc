import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { HEADER, policyDir } from "./helpers.js";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "policy", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("policy CLI", () => {
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
