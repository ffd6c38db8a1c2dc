/** `approval:` in a rule: the decision carries it (with its templated reason) only when the node would be configured. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { checkPolicies, loadPolicySet } from "../../src/policy/index.js";
import { renderDecision } from "../../src/policy/render.js";
import { HEADER, inventory, policyDir } from "./helpers.js";

const BODY = `brokerSets: { eu: [nats://eu1:4222] }
defaults: { brokerSet: eu }
rules:
  - name: new-hardware
    priority: 60
    conditions: { fact: facts.role, operator: equal, value: gpu }
    then:
      approval: { reason: "GPU node {{ identity }} needs a look" }
  - name: plain
    conditions: { fact: facts.role, operator: equal, value: db }
    then:
      reason: databases are vetted
      approval: required
  - name: gone
    priority: 90
    conditions: { fact: facts.retired, operator: equal, value: true }
    then: { outcome: defer, reason: retired }
`;

async function set(body = BODY) {
  const d = policyDir({ "policies/p.yaml": HEADER + body });
  return loadPolicySet({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
}

it("a rule's approval reaches the decision with its rendered reason; required takes the decision's reason", async () => {
  const ps = await set();
  const gpu = await ps.evaluate(inventory("g1.example.net", { role: "gpu" }));
  assert.equal(gpu.outcome, "configure");
  assert.deepEqual(gpu.approval, { reason: "GPU node g1.example.net needs a look" });
  assert.match(renderDecision("g1.example.net", gpu), /^approval:\s+required: GPU node g1\.example\.net needs a look$/m);
  const db = await ps.evaluate(inventory("d1.example.net", { role: "db" }));
  assert.deepEqual(db.approval, { reason: "databases are vetted" });
  const web = await ps.evaluate(inventory("w1.example.net", { role: "web" }));
  assert.equal(web.approval, undefined);
  const retired = await ps.evaluate(inventory("r1.example.net", { role: "gpu", retired: true }));
  assert.equal(retired.outcome, "defer");
  assert.equal(retired.approval, undefined, "a node that is not configured waits for nobody");
});

it("bad approval values and approval on a rule that never configures are load errors with positions", () => {
  const bad = (then: string) => {
    const d = policyDir({ "policies/p.yaml": HEADER + `brokerSets: { eu: [nats://eu1:4222] }\nrules:\n  - name: r\n    conditions: { fact: facts.x, operator: equal, value: 1 }\n    then: ${then}\n` });
    return checkPolicies({ policiesDir: d.policiesDir, rulesDir: d.rulesDir }).map((p) => `${p.line}:${p.col}: ${p.message}`);
  };
  assert.ok(bad("{ approval: maybe }").some((m) => /approval/.test(m)), JSON.stringify(bad("{ approval: maybe }")));
  assert.ok(bad("{ approval: { why: x } }").length > 0);
  const onDefer = bad("{ outcome: shutdown, reason: x, approval: required }");
  assert.ok(onDefer.some((m) => /approval is asked for a node the rule would configure; outcome "shutdown"/.test(m)), JSON.stringify(onDefer));
});
