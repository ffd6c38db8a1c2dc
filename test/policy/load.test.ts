import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkPolicies, formatProblem, loadPolicySet, PolicyLoadError, type PolicyProblem } from "../../src/policy/index.js";
import { HEADER, policyDir } from "./helpers.js";

const RULESET = (name: string, rules: string) => `apiVersion: choria-provisioner/v1
kind: RuleSet
metadata: { name: ${name} }
rules:
${rules}`;

function problemsOf(files: Record<string, string>): PolicyProblem[] {
  const d = policyDir(files);
  return checkPolicies({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
}

function find(problems: PolicyProblem[], text: string): PolicyProblem {
  const p = problems.find((x) => x.message.includes(text));
  assert.ok(p, `no problem mentioning ${JSON.stringify(text)} in:\n${problems.map(formatProblem).join("\n")}`);
  return p;
}

describe("policy loading", () => {
  it("loads the shipped example policies without problems", async () => {
    assert.deepEqual(checkPolicies({ policiesDir: "policies", rulesDir: "rules" }).map(formatProblem), []);
    assert.deepEqual(checkPolicies({ policiesDir: "policies/examples", rulesDir: "rules" }).map(formatProblem), []);
    const fleet = await loadPolicySet({ policiesDir: "policies" });
    assert.equal(fleet.ref.name, "fleet");
    assert.match(fleet.ref.hash, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(fleet.files, ["policies/fleet.yaml", "rules/fleet-lifecycle.yaml", "rules/fleet-sites.yaml", "rules/fleet-roles.yaml"]);
  });

  it("reports every problem with file:line:col and the rule name, not just the first", () => {
    const problems = problemsOf({
      "policies/p.yaml":
        HEADER +
        `brokerSets:
  eu: [nats://b:4222]
rules:
  - name: a
    conditions:
      all:
        - { fact: facts.country, operator: bogus, value: nl }
        - { fact: facts.ip, operator: inCidr, value: 10.0.0.0/33 }
        - { fact: version, operator: semver, value: "not a range" }
        - { fact: facts.x, operator: matches, value: "([" }
        - { fact: nope.x, operator: equal, value: 1 }
        - { fact: identity.x, operator: equal, value: 1 }
    then:
      brokerSet: us
`,
    });
    const ln = (n: number) => n + HEADER.split("\n").length - 1;
    const op = find(problems, 'unknown operator "bogus"');
    assert.deepEqual([op.line, op.col, op.rule], [ln(7), 44, "a"]);
    assert.equal(find(problems, "bad CIDR").line, ln(8));
    assert.equal(find(problems, "semver range").line, ln(9));
    assert.equal(find(problems, "bad regular expression").line, ln(10));
    const fact = find(problems, 'unknown fact "nope"');
    assert.deepEqual([fact.line, fact.col], [ln(11), 19]);
    assert.equal(find(problems, '"identity" is a single value').line, ln(12));
    const bs = find(problems, 'undefined broker set "us"');
    assert.deepEqual([bs.line, bs.col, bs.rule], [ln(14), 18, "a"]);
    assert.equal(problems.length, 7);
    assert.ok(problems.every((p) => p.file.endsWith("policies/p.yaml")));
  });

  it("maps schema errors to positions and names the field", () => {
    const problems = problemsOf({
      "policies/p.yaml":
        HEADER +
        `rules:
  - name: r
    conditions: { all: [{ fact: identity, operator: equal, value: x }] }
    then:
      configuration:
        registerinterval: 300
    extra: 1
`,
    });
    const t = find(problems, "must be a string");
    assert.deepEqual([t.line, t.col, t.rule], [11, 27, "r"]);
    const x = find(problems, 'unknown field "extra"');
    assert.deepEqual([x.line, x.col], [12, 5]);
  });

  it("reports undefined includes, duplicate rule names and reserved configuration keys", () => {
    const problems = problemsOf({
      "policies/p.yaml":
        HEADER +
        `include: [shared, missing]
brokerSets: { eu: [b:4222] }
rules:
  - name: dup
    conditions: { all: [{ fact: identity, operator: equal, value: x }] }
    then:
      configuration:
        plugin.choria.server.provision: "true"
`,
      "rules/shared.yaml": RULESET("shared", `  - { name: dup, conditions: { all: [{ fact: identity, operator: equal, value: y }] }, then: { brokerSet: eu } }\n`),
    });
    assert.equal(find(problems, 'undefined rule set "missing"').line, 6);
    const dup = find(problems, "duplicate rule name");
    assert.equal(dup.rule, "dup");
    assert.match(dup.message, /rules\/shared\.yaml:5/);
    assert.equal(find(problems, "plugin.choria.server.provision").rule, "dup");
  });

  it("rejects conflicting outcomes at the same priority but accepts them at different priorities", () => {
    const rules = (p2: number) => `rules:
  - { name: one, conditions: { all: [{ fact: facts.a, operator: equal, value: 1 }] }, then: { outcome: defer, reason: x } }
  - { name: two, priority: ${p2}, conditions: { all: [{ fact: facts.b, operator: equal, value: 1 }] }, then: { outcome: shutdown } }
`;
    const clash = find(problemsOf({ "policies/p.yaml": HEADER + rules(50) }), "conflicts with rule");
    assert.equal(clash.rule, "two");
    assert.equal(clash.line, 8);
    assert.deepEqual(problemsOf({ "policies/p.yaml": HEADER + rules(60) }), []);
  });

  it("reports YAML syntax errors and wrong kinds with positions", () => {
    const problems = problemsOf({
      "policies/p.yaml": HEADER + "rules: [\n  - a\n",
      "policies/q.yaml": "apiVersion: choria-provisioner/v1\nkind: Polcy\n",
      "rules/r.yaml": "apiVersion: x\nkind: RuleSet\nkind: RuleSet\n",
    });
    assert.ok(problems.some((p) => p.file.endsWith("p.yaml") && p.message.startsWith("YAML:")));
    assert.equal(find(problems, 'got "Polcy"').line, 2);
    assert.ok(problems.some((p) => p.file.endsWith("r.yaml") && /unique/i.test(p.message)), "duplicate keys are errors");
  });

  it("rejects unknown template paths and variables at load time", () => {
    const problems = problemsOf({
      "policies/p.yaml":
        HEADER +
        `vars: { ssldir: /etc/ssl }
brokerSets: { eu: [b:4222] }
defaults:
  brokerSet: eu
  configuration:
    a: "{{ vars.sldir }}/x"
    b: "{{ fact.country }}"
    c: "{{ facts.country | titlecase }}"
    d: "{{ vars.ssldir }} {{ facts.country | default \\"nl\\" | upper }}"
`,
    });
    find(problems, 'undefined variable "sldir"');
    find(problems, 'unknown fact "fact"');
    find(problems, 'unknown filter "titlecase"');
    assert.equal(problems.length, 3);
  });

  it("throws PolicyLoadError from loadPolicySet and needs a name when several policies exist", async () => {
    const d = policyDir({
      "policies/a.yaml": HEADER.replace("name: p", "name: a") + "brokerSets: { eu: [b:4222] }\n",
      "policies/b.yaml": HEADER.replace("name: p", "name: b") + "brokerSets: { eu: [b:4222] }\n",
    });
    await assert.rejects(loadPolicySet({ policiesDir: d.policiesDir }), (e: unknown) => e instanceof PolicyLoadError && /several policies/.test(e.message));
    const b = await loadPolicySet({ policiesDir: d.policiesDir, policy: "b" });
    assert.equal(b.ref.name, "b");
    await assert.rejects(loadPolicySet({ policiesDir: join(d.root, "nope") }), (e: unknown) => e instanceof PolicyLoadError && e.problems[0]!.message.includes("not found"));
  });

  it("hashes canonical content: comments and key order do not matter, values and included rule sets do", async () => {
    const rs = (v: string) => RULESET("shared", `  - { name: r, conditions: { all: [{ fact: identity, operator: equal, value: ${v} }] }, then: { brokerSet: eu } }\n`);
    const d = policyDir({ "policies/p.yaml": HEADER + "include: [shared]\nbrokerSets: { eu: [b:4222] }\n", "rules/shared.yaml": rs("x") });
    const h1 = (await loadPolicySet({ policiesDir: d.policiesDir })).ref.hash;
    const file = join(d.policiesDir, "p.yaml");
    writeFileSync(file, "# a comment\n" + readFileSync(file, "utf8").replace("include: [shared]\nbrokerSets: { eu: [b:4222] }", "brokerSets:\n  eu: [ b:4222 ]\ninclude:\n  - shared"));
    assert.equal((await loadPolicySet({ policiesDir: d.policiesDir })).ref.hash, h1);
    writeFileSync(join(d.rulesDir, "shared.yaml"), rs("y"));
    assert.notEqual((await loadPolicySet({ policiesDir: d.policiesDir })).ref.hash, h1);
  });

  it("requires action policy files to end in .policy and OPA files in .rego", () => {
    const problems = problemsOf({
      "policies/p.yaml": HEADER + `defaults:\n  actionPolicies:\n    rpcutil: x\n    ok.policy: y\n  opaPolicies:\n    default.opa: z\n`,
    });
    assert.deepEqual(problems.map((p) => [p.line, p.col]), [[8, 5], [11, 5]]);
    assert.match(problems[0]!.message, /key "rpcutil"/);
  });
});
