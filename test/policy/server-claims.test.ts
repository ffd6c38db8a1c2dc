/**
 * serverClaims in policies: what the legacy helper's server_claims gives the server JWT signer,
 * written as policy data. Merge order, templates, load errors with positions (the same values
 * signServerJwt refuses), and eval / test / diff showing the claims.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkPolicies, formatProblem, loadPolicySet, renderExplanation, type PolicyProblem, type PolicySet } from "../../src/policy/index.js";
import { diffDecisions } from "../../src/policy/diff.js";
import { renderDecision } from "../../src/policy/render.js";
import { runPolicyTests } from "../../src/policy/testing.js";
import { ServerJwtError, signServerJwt } from "../../src/credentials/index.js";
import { edPair } from "../credentials/helpers.js";
import { HEADER, inventory, policyDir } from "./helpers.js";

async function policy(body: string, files: Record<string, string> = {}): Promise<PolicySet> {
  const d = policyDir({ "policies/p.yaml": HEADER + body, ...files });
  return loadPolicySet({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
}

function problemsOf(body: string, files: Record<string, string> = {}): PolicyProblem[] {
  const d = policyDir({ "policies/p.yaml": HEADER + body, ...files });
  return checkPolicies({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
}

const when = (fact: string, value: unknown) => `{ fact: ${fact}, operator: equal, value: ${JSON.stringify(value)} }`;
/** line numbers in a body, counted from the policy file's first line */
const ln = (n: number) => n + HEADER.split("\n").length - 1;

const MERGE = `brokerSets: { eu: [nats://eu1:4222] }
defaults:
  brokerSet: eu
  serverClaims:
    ou: choria
    collectives: [mcollective]
    pub_subjects: [choria.default]
    permissions: { submission: true, streams: true }
rules:
  - name: site
    priority: 10
    conditions: ${when("facts.dc", "ams1")}
    then:
      serverClaims:
        collectives: ["{{ facts.dc }}", mcollective]
        permissions: { governor: true, service_host: true }
  - name: org
    priority: 90
    conditions: ${when("jwt.ou", "acme")}
    then:
      serverClaims:
        ou: "{{ jwt.ou }}"
        exp: 4102444800
        permissions: { streams: false }
  - name: tie-a
    conditions: ${when("facts.dc", "ams1")}
    then: { serverClaims: { pub_subjects: ["a.{{ identity }}"] } }
  - name: tie-b
    conditions: ${when("facts.dc", "ams1")}
    then: { serverClaims: { pub_subjects: ["b.{{ identity }}"] } }
`;

describe("policy serverClaims", () => {
  it("merges each claim and each permission like a configuration key; lists replace, in a fixed key order", async () => {
    const ps = await policy(MERGE);
    const d = await ps.evaluate(inventory("n1.example.net", { dc: "ams1" }, { jwt: { ou: "acme" } }));
    assert.equal(d.outcome, "configure");
    // JSON text, so the key order is checked too: Go's claim order, whatever the rule order
    assert.equal(
      JSON.stringify(d.serverClaims),
      JSON.stringify({
        ou: "acme", // org (90) over the defaults
        exp: 4102444800,
        collectives: ["ams1", "mcollective"], // site's list replaces the defaults', no union
        pub_subjects: ["b.n1.example.net"], // equal priority: declared later wins
        // per permission: org revokes streams, site adds two, the defaults give submission
        permissions: { submission: true, streams: false, governor: true, service_host: true },
      }),
    );
    // no rule fires: the defaults alone
    const plain = await ps.evaluate(inventory("n2.example.net", { dc: "fra1" }));
    assert.deepEqual(plain.serverClaims, { ou: "choria", collectives: ["mcollective"], pub_subjects: ["choria.default"], permissions: { submission: true, streams: true } });
  });

  it("stop drops lower rules' claims; a policy without serverClaims leaves the decision without them", async () => {
    const ps = await policy(`brokerSets: { eu: [nats://eu1:4222] }
defaults: { brokerSet: eu, serverClaims: { permissions: { submission: true } } }
rules:
  - name: low
    priority: 10
    conditions: ${when("facts.dc", "ams1")}
    then: { serverClaims: { ou: low, permissions: { streams: true } } }
  - name: top
    priority: 90
    stop: true
    conditions: ${when("facts.dc", "ams1")}
    then: { serverClaims: { collectives: [top] } }
`);
    const d = await ps.evaluate(inventory("n1.example.net", { dc: "ams1" }));
    assert.deepEqual(d.serverClaims, { collectives: ["top"], permissions: { submission: true } });
    assert.deepEqual(d.fired.map((f) => f.name), ["top"]);

    const none = await policy(`brokerSets: { eu: [nats://eu1:4222] }
defaults: { brokerSet: eu, serverClaims: {} }
`);
    const n = await none.evaluate(inventory("n1.example.net", {}));
    assert.equal(n.outcome, "configure");
    assert.ok(!("serverClaims" in n), "no claims set: the signer's defaults apply unchanged");
  });

  it("gives no claims to decisions that configure nothing", async () => {
    const ps = await policy(`brokerSets: { eu: [nats://eu1:4222] }
defaults: { serverClaims: { ou: acme } }
rules:
  - name: eu
    conditions: ${when("facts.dc", "ams1")}
    then: { brokerSet: eu }
`);
    // no broker set: deferred, and a deferred node gets no server JWT
    const d = await ps.evaluate(inventory("n1.example.net", { dc: "xx" }));
    assert.equal(d.outcome, "defer");
    assert.equal(d.serverClaims, undefined);
  });

  it("renders templates per node; a missing value or an empty result defers with the rule and claim named", async () => {
    const ps = await policy(`brokerSets: { eu: [nats://eu1:4222] }
defaults:
  brokerSet: eu
  serverClaims: { ou: "{{ facts.never_set }}" }
rules:
  - name: org
    conditions: ${when("facts.role", "web")}
    then:
      serverClaims:
        ou: "{{ facts.org | upper }}"
        collectives: ["{{ facts.dc }}"]
        pub_subjects: ["nodes.{{ identity }}.{{ facts.dc | default \\"none\\" }}"]
`);
    const ok = await ps.evaluate(inventory("n1.example.net", { role: "web", org: "acme", dc: "ams1" }));
    // the defaults' ou template is overridden, so it is never rendered and cannot defer the node
    assert.deepEqual(ok.serverClaims, { ou: "ACME", collectives: ["ams1"], pub_subjects: ["nodes.n1.example.net.ams1"] });

    const missing = await ps.evaluate(inventory("n2.example.net", { role: "web", org: "acme" }));
    assert.equal(missing.outcome, "defer");
    assert.match(missing.reason, /^cannot build the decision: rule org serverClaims\.collectives: template value facts\.dc is not set for this node/);

    const empty = await ps.evaluate(inventory("n3.example.net", { role: "web", org: "acme", dc: "" }));
    assert.equal(empty.outcome, "defer");
    assert.match(empty.reason, /rule org serverClaims\.collectives: renders to an empty string \(from facts\.dc\)/);

    const defaults = await ps.evaluate(inventory("n4.example.net", { role: "db" }));
    assert.match(defaults.reason, /defaults serverClaims\.ou: template value facts\.never_set is not set/);
  });

  it("reports bad values with file:line:col and the rule; every value the signer would refuse is a load error", () => {
    const body = `brokerSets: { eu: [nats://eu1:4222] }
rules:
  - name: bad
    conditions: ${when("facts.dc", "ams1")}
    then:
      brokerSet: eu
      serverClaims:
        ou: 42
        exp: "next year"
        collectives: mcollective
        pub_subjects: [1]
        permissions: { streams: yes, org_admin: true }
        organization: acme
`;
    const problems = problemsOf(body);
    const at = (text: string) => {
      const p = problems.find((x) => x.message.includes(text));
      assert.ok(p, `no problem mentioning ${JSON.stringify(text)} in:\n${problems.map(formatProblem).join("\n")}`);
      assert.equal(p.rule, "bad");
      assert.ok(p.file.endsWith("policies/p.yaml"));
      return [p.line, p.col];
    };
    assert.deepEqual(at("serverClaims.ou must be a string"), [ln(8), 13]);
    assert.deepEqual(at("serverClaims.exp must be integer"), [ln(9), 14]);
    assert.deepEqual(at("serverClaims.collectives must be array"), [ln(10), 22]);
    assert.deepEqual(at("serverClaims.pub_subjects.0 must be a string"), [ln(11), 24]);
    assert.deepEqual(at("serverClaims.permissions.streams must be true or false"), [ln(12), 33]);
    assert.deepEqual(at('unknown field "org_admin" (server permissions: submission, streams, governor, service_host)'), [ln(12), 38]);
    assert.deepEqual(at('unknown field "organization" (server JWT claims a policy sets'), [ln(13), 9]);
    assert.equal(problems.length, 7, problems.map(formatProblem).join("\n"));

    // the same values through the legacy helper path: the signer refuses each, but only when it
    // signs for a node (a deferral per node); a policy refuses them before it runs at all
    const { pubHex, seedHex } = edPair();
    for (const serverClaims of [{ ou: 42 }, { exp: "next year" }, { collectives: "mcollective" }, { pub_subjects: [1] }, { permissions: { streams: "yes" } }, { collectives: [""] }]) {
      assert.throws(() => signServerJwt({ identity: "n1", publicKey: pubHex, serverClaims: serverClaims as never }, seedHex), ServerJwtError, JSON.stringify(serverClaims));
    }
    const emptyCollective = problemsOf(body.replace(/serverClaims:[\s\S]*$/, 'serverClaims: { collectives: [""], ou: "" }\n'));
    assert.deepEqual(emptyCollective.map((p) => [p.line, p.message]), [
      [ln(7), "rules.0.then.serverClaims.collectives.0 must NOT have fewer than 1 characters"],
      [ln(7), "rules.0.then.serverClaims.ou must NOT have fewer than 1 characters"],
    ]);
  });

  it("checks serverClaims in defaults and rule sets, points helper authors at the name, and refuses them on defer/shutdown rules", () => {
    const helperName = problemsOf(`defaults:
  server_claims: { ou: acme }
`);
    assert.deepEqual(helperName.map((p) => [p.line, p.col, p.message]), [[ln(2), 3, 'unknown field "server_claims" (did you mean "serverClaims"?)']]);

    const problems = problemsOf(
      `include: [org]
brokerSets: { eu: [nats://eu1:4222] }
defaults:
  serverClaims: { ou: acme }
rules:
  - name: gone
    conditions: ${when("facts.state", "gone")}
    then: { outcome: shutdown, serverClaims: { ou: acme } }
`,
      {
        "rules/org.yaml": `apiVersion: choria-provisioner/v1
kind: RuleSet
metadata: { name: org }
rules:
  - name: org
    conditions: ${when("jwt.ou", "acme")}
    then:
      serverClaims: { ou: "{{ vars.nope }}", permissions: { governor: 1 } }
`,
      },
    );
    const lines = problems.map(formatProblem).map((l) => l.replace(/^.*?(policies|rules)\//, "$1/"));
    assert.deepEqual(lines, [
      `policies/p.yaml:${ln(8)}:22: gone: outcome "shutdown" never configures the node; its brokerSet/configuration/serverClaims would be ignored`,
      "rules/org.yaml:8:71: org: rules.0.then.serverClaims.permissions.governor must be true or false (yes/no/on/off are strings in YAML 1.2)",
    ]);
    // once the schema is satisfied, the rule set's templates are checked against the policy
    const fixed = problemsOf(`include: [org]
brokerSets: { eu: [nats://eu1:4222] }
`, {
      "rules/org.yaml": `apiVersion: choria-provisioner/v1
kind: RuleSet
metadata: { name: org }
rules:
  - name: org
    conditions: ${when("jwt.ou", "acme")}
    then:
      serverClaims: { ou: "{{ vars.nope }}" }
`,
    });
    assert.equal(fixed.length, 1, fixed.map(formatProblem).join("\n"));
    assert.match(formatProblem(fixed[0]!), /rules\/org\.yaml:8:27: org: .*vars\.nope/);
  });

  it("yields a decision the signer turns into exactly these claims", async () => {
    const ps = await policy(MERGE);
    const d = await ps.evaluate(inventory("n1.example.net", { dc: "ams1" }, { jwt: { ou: "acme" } }));
    const { pubHex, seedHex } = edPair();
    const now = new Date("2030-01-01T00:00:00Z");
    const { claims } = signServerJwt({ identity: "n1.example.net", publicKey: pubHex, configuration: d.configuration, serverClaims: d.serverClaims ?? null }, seedHex, { now });
    assert.equal(claims.ou, "acme");
    assert.equal(claims.exp, 4102444800);
    assert.deepEqual(claims.collectives, ["ams1", "mcollective"]);
    assert.deepEqual(claims.pub_subjects, ["b.n1.example.net"]);
    // a revoked permission is simply absent from the token
    assert.deepEqual(claims.permissions, { submission: true, governor: true, service_host: true });
  });

  it("policy eval prints the claims, --explain JSON carries them, and the policy hash covers them", async () => {
    const ps = await policy(MERGE);
    const ex = await ps.explain(inventory("n1.example.net", { dc: "ams1" }, { jwt: { ou: "acme" } }));
    const text = renderDecision("n1.example.net", ex.decision);
    assert.match(
      text,
      /\nserver JWT claims \(features\.ed25519\):\n {2}ou {11}= acme\n {2}exp {10}= 4102444800 \(2100-01-01T00:00:00\.000Z\)\n {2}collectives {2}= ams1, mcollective\n {2}pub_subjects = b\.n1\.example\.net\n {2}permissions  = submission, no streams, governor, service_host\nrules applied/,
    );
    assert.match(renderExplanation(ex), /rule org \[priority 90\] .*: APPLIED/);
    assert.deepEqual(JSON.parse(JSON.stringify({ ...ex.decision, explanation: ex.rules })).serverClaims.permissions.streams, false);
    const other = await policy(MERGE.replace("exp: 4102444800", "exp: 4102444801"));
    assert.notEqual(ps.ref.hash, other.ref.hash);
  });

  it("policy diff lists claim changes key by key", async () => {
    const a = await (await policy(MERGE)).evaluate(inventory("n1.example.net", { dc: "ams1" }, { jwt: { ou: "acme" } }));
    const b = await (await policy(MERGE.replace("permissions: { streams: false }", "permissions: { streams: true }").replace('ou: "{{ jwt.ou }}"', "ou: other"))).evaluate(inventory("n1.example.net", { dc: "ams1" }, { jwt: { ou: "acme" } }));
    assert.deepEqual(diffDecisions(a, b), [
      { key: "serverClaims.ou", from: "acme", to: "other" },
      { key: "serverClaims.permissions.streams", from: false, to: true },
    ]);
  });

  it("policy test compares expected claims, explains mismatches and --update writes them", async () => {
    const tests = (expect: string) => `apiVersion: choria-provisioner/v1
kind: PolicyTest
metadata: { name: t }
cases:
  - name: acme node
    identity: n1.example.net
    facts: { dc: ams1 }
    jwt: { ou: acme }
    expect: ${expect}
`;
    const d = policyDir({
      "policies/p.yaml": HEADER + MERGE,
      "policies/tests/t.yaml": tests(
        "{ outcome: configure, serverClaims: { ou: acme, collectives: [mcollective, ams1], exp: 1, pub_subjects: [b.n1.example.net], permissions: { streams: true, submission: true, governor: false } } }",
      ),
    });
    const run = await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir });
    assert.deepEqual(run.problems, []);
    assert.deepEqual(run.results[0]!.failures, [
      'serverClaims.exp: expected 1, got 4102444800',
      'serverClaims.collectives: expected ["mcollective","ams1"], got ["ams1","mcollective"]',
      "serverClaims.permissions.streams: expected true, got false",
      "serverClaims.permissions.governor: expected false, got true",
    ]);

    // false matches an unset permission: the signer drops false ones, so the tokens are the same
    writeFileSync(join(d.policiesDir, "tests/t.yaml"), tests("{ serverClaims: { ou: acme, permissions: { streams: false, submission: true } } }"));
    assert.equal((await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir })).results[0]!.passed, true);
    writeFileSync(join(d.policiesDir, "tests/t.yaml"), tests("{ serverClaims: { permissions: { org_admin: true } } }"));
    const bad = await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir });
    assert.match(formatProblem(bad.problems[0]!), /t\.yaml:9:46: unknown field "org_admin"/);

    writeFileSync(join(d.policiesDir, "tests/t.yaml"), tests("{}"));
    await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir, update: "empty" });
    assert.match(readFileSync(join(d.policiesDir, "tests/t.yaml"), "utf8"), /serverClaims:\n {8}ou: acme\n {8}exp: 4102444800\n/);
    assert.equal((await runPolicyTests({ dir: d.policiesDir, policiesDir: d.policiesDir })).results[0]!.passed, true);
  });
});
