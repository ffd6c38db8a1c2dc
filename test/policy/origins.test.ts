/** `--explain` and failing policy tests name where a configuration value came from. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadPolicySet, renderExplanation } from "../../src/policy/index.js";
import { runPolicyTests } from "../../src/policy/testing.js";
import { HEADER, inventory, policyDir } from "./helpers.js";

const BODY = `brokerSets: { eu: [eu1:4222] }
defaults:
  brokerSet: eu
  configuration:
    loglevel: info
    registerinterval: "300"
rules:
  - name: prod
    conditions: { all: [{ fact: facts.env, operator: equal, value: prod }] }
    then: { configuration: { loglevel: warn } }
`;

test("explain names the rule or the policy default (file:line:col) of every configuration value", async () => {
  const d = policyDir({ "policies/p.yaml": HEADER + BODY });
  const ps = await loadPolicySet({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
  const file = join(d.policiesDir, "p.yaml");
  const ex = await ps.explain(inventory("n.example.net", { env: "prod" }));
  // HEADER is 5 lines: defaults.configuration.registerinterval is on line 11, column 5
  assert.equal(ex.origins!.registerinterval, `policy defaults (${file}:11:5)`);
  assert.equal(ex.origins!.loglevel, `rule prod (${file}:13:5)`);
  assert.equal(ex.origins!.identity, "built in (always set)");
  const text = renderExplanation(ex);
  assert.match(text, /configuration values from:\n(.*\n)*  registerinterval +policy defaults \(.*p\.yaml:11:5\)/);
  // not prod: loglevel now comes from the defaults
  assert.equal((await ps.explain(inventory("m.example.net", {}))).origins!.loglevel, `policy defaults (${file}:10:5)`);
});

test("a failing test case names the default a wrong value came from", async () => {
  const d = policyDir({
    "policies/p.yaml": HEADER + BODY,
    "policies/tests/p.test.yaml": `apiVersion: choria-provisioner/v1
kind: PolicyTest
metadata: { name: t }
policy: p
policiesDir: ..
cases:
  - name: staging logs at debug
    identity: s.example.net
    facts: { env: staging }
    expect: { configuration: { loglevel: debug } }
`,
  });
  const run = await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir, rulesDir: d.rulesDir });
  assert.deepEqual(run.problems, []);
  const failures = run.results.flatMap((r) => r.failures);
  assert.deepEqual(failures, [`configuration.loglevel: expected "debug", got "info" (from policy defaults (${join(d.policiesDir, "p.yaml")}:10:5))`]);
});
