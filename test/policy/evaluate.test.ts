import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadPolicySet, renderExplanation, type PolicySet } from "../../src/policy/index.js";
import type { Inventory } from "../../src/types/index.js";
import { HEADER, inventory, policyDir } from "./helpers.js";

async function policy(body: string, files: Record<string, string> = {}): Promise<PolicySet> {
  const d = policyDir({ "policies/p.yaml": HEADER + body, ...files });
  return loadPolicySet({ policiesDir: d.policiesDir, rulesDir: d.rulesDir });
}

const when = (fact: string, operator: string, value: unknown) => `{ all: [{ fact: ${fact}, operator: ${operator}, value: ${JSON.stringify(value)} }] }`;

describe("policy evaluation", () => {
  it("merges by priority, lets the later rule win at equal priority, and unions SANs", async () => {
    const ps = await policy(`brokerSets: { eu: [nats://eu1:4222, nats://eu2:4222], us: [us1:4222] }
defaults:
  configuration: { loglevel: info, keep: default }
  certificate: { validityDays: 90, sans: ["default.example.net"] }
rules:
  - name: low
    priority: 10
    conditions: ${when("facts.country", "equal", "nl")}
    then: { brokerSet: us, configuration: { loglevel: debug, low: "1" }, certificate: { sans: ["low.example.net"] } }
  - name: high
    priority: 90
    conditions: ${when("facts.country", "equal", "nl")}
    then: { brokerSet: eu, configuration: { loglevel: warn }, certificate: { validityDays: 30, sans: ["{{ facts.country }}.example.net"] } }
  - name: same-a
    conditions: ${when("facts.country", "equal", "nl")}
    then: { configuration: { tie: a } }
  - name: same-b
    conditions: ${when("facts.country", "equal", "nl")}
    then: { configuration: { tie: b } }
`);
    const d = await ps.evaluate(inventory("n1.example.net", { country: "nl" }));
    assert.equal(d.outcome, "configure");
    assert.equal(d.brokerSet, "eu");
    assert.deepEqual(d.brokers, ["nats://eu1:4222", "nats://eu2:4222"]);
    assert.equal(d.configuration.loglevel, "warn");
    assert.equal(d.configuration.low, "1");
    assert.equal(d.configuration.keep, "default");
    assert.equal(d.configuration.tie, "b", "at equal priority the later rule wins");
    assert.equal(d.certificate.validityDays, 30);
    assert.deepEqual(d.certificate.sans, ["nl.example.net", "low.example.net", "default.example.net"]);
    assert.deepEqual(d.fired.map((f) => f.name), ["high", "same-b", "same-a", "low"]);
    assert.deepEqual(d.policy, ps.ref);
  });

  it("always applies the safe defaults on configure", async () => {
    const ps = await policy(`brokerSets: { eu: [nats://eu1:4222, eu2:4222] }
defaults: { brokerSet: eu }
`);
    const d = await ps.evaluate(inventory("n1.example.net", {}));
    assert.equal(d.configuration["plugin.choria.server.provision"], "false");
    assert.equal(d.configuration.identity, "n1.example.net");
    assert.equal(d.configuration["plugin.choria.middleware_hosts"], "nats://eu1:4222,eu2:4222");
    assert.ok(Object.values(d.configuration).every((v) => typeof v === "string"));
  });

  it("defers instead of configuring a node without brokers", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: nl
    conditions: ${when("facts.country", "equal", "nl")}
    then: { brokerSet: eu }
  - name: registration
    conditions: ${when("identity", "exists", true)}
    then: { configuration: { registerinterval: "300" } }
`);
    const d = await ps.evaluate(inventory("n1", { country: "us" }));
    assert.equal(d.outcome, "defer");
    assert.match(d.reason, /no broker set/);
    assert.match(d.reason, /registration/);
    assert.deepEqual(d.brokers, []);
    assert.deepEqual(d.configuration, {});
  });

  it("honours stop: lower priority rules are not applied", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
defaults: { brokerSet: eu }
rules:
  - name: gate
    priority: 100
    stop: true
    conditions: ${when("facts.role", "equal", "decommissioned")}
    then: { outcome: shutdown, reason: "{{ identity }} is retired" }
  - name: config
    conditions: ${when("identity", "exists", true)}
    then: { configuration: { x: "1" } }
`);
    const d = await ps.evaluate(inventory("old1", { role: "decommissioned" }));
    assert.equal(d.outcome, "shutdown");
    assert.equal(d.reason, "old1 is retired");
    assert.deepEqual(d.fired.map((f) => f.name), ["gate"]);
    const e = await ps.explain(inventory("old1", { role: "decommissioned" }));
    const config = e.rules.find((r) => r.name === "config")!;
    assert.equal(config.matched, true);
    assert.equal(config.applied, false);
    assert.match(config.note ?? "", /stopped by rule gate/);
    const ok = await ps.evaluate(inventory("new1", { role: "web" }));
    assert.equal(ok.outcome, "configure");
    assert.equal(ok.configuration.x, "1");
  });

  it("produces upgrade decisions with the target version", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
defaults: { brokerSet: eu }
rules:
  - name: upgrade
    conditions:
      all:
        - { fact: version, operator: semver, value: "< 0.29.0" }
        - { fact: upgradable, operator: equal, value: true }
    then: { outcome: upgrade, upgrade: { version: 0.29.4, repository: "https://repo.example.net/choria" } }
`);
    // Choria versions carry a 4th build part that strict semver rejects
    const d = await ps.evaluate(inventory("n", {}, { version: "0.28.0.20240101", upgradable: true }));
    assert.equal(d.outcome, "upgrade");
    assert.equal(d.upgradeVersion, "0.29.4");
    assert.equal(d.upgradeRepository, "https://repo.example.net/choria");
    assert.equal((await ps.evaluate(inventory("n", {}, { version: "0.28.0", upgradable: false }))).outcome, "configure");
    assert.equal((await ps.evaluate(inventory("n", {}, { version: "0.29.4", upgradable: true }))).outcome, "configure");
  });

  it("defers with a reason when a template value is missing on this node", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
defaults:
  brokerSet: eu
  configuration:
    dc: "{{ facts.dc }}"
    site: "{{ facts.site | default \\"none\\" }}"
`);
    const bad = await ps.evaluate(inventory("n", {}));
    assert.equal(bad.outcome, "defer");
    assert.match(bad.reason, /configuration dc: template value facts\.dc is not set/);
    const good = await ps.evaluate(inventory("n", { dc: "ams1" }));
    assert.equal(good.configuration.dc, "ams1");
    assert.equal(good.configuration.site, "none");
  });

  it("never throws on bad inventory data", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
defaults: { brokerSet: eu }
rules:
  - name: r
    conditions: ${when("facts.a.b", "matches", "^x")}
    then: { configuration: { a: "{{ facts.a }}" } }
`);
    for (const bad of [null, {}, { identity: "" }, { identity: "x", facts: null }, { identity: "x", facts: {}, agents: "rpcutil" }] as unknown as Inventory[]) {
      const d = await ps.evaluate(bad);
      assert.equal(d.outcome, "defer");
      assert.match(d.reason, /invalid inventory/);
    }
    // a fact that is a structure where a value is templated
    const d = await ps.evaluate(inventory("x", { a: { b: "xyz" } }));
    assert.equal(d.outcome, "defer");
    assert.match(d.reason, /is a structure/);
    // odd fact types just do not match: the rule does not fire and the defaults configure the node
    for (const a of [{ b: 42 }, { b: ["y"] }, "scalar", null]) {
      const r = await ps.evaluate(inventory("x", { a }));
      assert.equal(r.outcome, "configure", JSON.stringify(a));
      assert.deepEqual(r.fired, []);
    }
  });

  it("implements the custom operators", async () => {
    const cases: Array<[string, string, unknown, Partial<Inventory>, boolean]> = [
      ["identity", "matches", "^web\\d+\\.", {}, true],
      ["identity", "matches", ["^db", "^cache"], {}, false],
      ["identity", "glob", "web*.example.net", {}, true],
      ["identity", "glob", "*.example.org", {}, false],
      ["facts.ip", "inCidr", "10.1.0.0/16", {}, true],
      ["facts.ip", "inCidr", ["192.168.0.0/16", "2001:db8::/32"], {}, false],
      ["facts.ip6", "inCidr", "2001:db8::/32", {}, true],
      ["facts.ip", "inCidr", "2001:db8::/32", {}, false],
      ["version", "semver", ">= 0.29.0", { version: "0.29.4" }, true],
      ["version", "semver", "^0.28", { version: "0.29.4" }, false],
      ["agents", "hasAgent", ["rpcutil", "choria_provision"], {}, true],
      ["agents", "hasAgent", "puppet", {}, false],
      ["classes", "hasClass", "roles::web", { classes: ["roles::web"] }, true],
      ["facts.nope", "exists", false, {}, true],
      ["facts.ip", "exists", true, {}, true],
      ["csr.cn", "equal", "web1.example.net", { csr: { cn: "web1.example.net", sans: [], keyType: "rsa", keyBits: 2048 } }, true],
      ["facts.n", "greaterThan", 4, {}, true],
      ["collectives", "contains", "provisioning", {}, true],
    ];
    for (const [fact, op, value, more, expected] of cases) {
      const ps = await policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: r
    conditions: ${when(fact, op, value)}
    then: { brokerSet: eu }
`);
      const d = await ps.evaluate(inventory("web1.example.net", { ip: "10.1.2.3", ip6: "2001:db8::1", n: 8 }, more));
      assert.equal(d.outcome === "configure", expected, `${fact} ${op} ${JSON.stringify(value)} should be ${expected}: ${d.reason}`);
    }
  });

  it("explains fired rules with the fact values seen", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: nl
    conditions:
      any:
        - { fact: facts.country, operator: equal, value: nl }
        - { fact: facts.country, operator: equal, value: be }
    then: { brokerSet: eu }
`);
    const d = await ps.evaluate(inventory("n", { country: "be" }), { explain: true });
    assert.equal(d.fired.length, 1);
    const f = d.fired[0]!;
    assert.equal(f.why, 'facts.country equal "be" (saw "be")');
    assert.match(f.source, /p\.yaml:8:5$/);
    assert.deepEqual(f.conditions, [
      { fact: "facts.country", operator: "equal", expected: "nl", actual: "be", result: false },
      { fact: "facts.country", operator: "equal", expected: "be", actual: "be", result: true },
    ]);
    const plain = await ps.evaluate(inventory("n", { country: "be" }));
    assert.equal(plain.fired[0]!.conditions, undefined);
  });

  it("explains a rule on a fact nested 20,000 deep without writing it out (JSON.stringify would overflow the stack)", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: odd
    conditions: ${when("facts.odd", "notEqual", "plain")}
    then: { brokerSet: eu }
`);
    const odd = JSON.parse('{"k":'.repeat(20_000) + "1" + "}".repeat(20_000)) as unknown;
    const d = await ps.evaluate(inventory("n", { odd }), { explain: true });
    assert.equal(d.outcome, "configure");
    assert.equal(d.fired[0]!.why, 'facts.odd notEqual "plain" (saw <an object nested more than 64 levels deep>)');
    assert.deepEqual(d.fired[0]!.conditions, [{ fact: "facts.odd", operator: "notEqual", expected: "plain", actual: "<an object nested more than 64 levels deep>", result: true }]);
    assert.match(renderExplanation(await ps.explain(inventory("n", { odd }))), /saw <an object nested more than 64 levels deep>/);
  });
});

describe("retryAfter on a defer", () => {
  it("is the deferring rule's time to decide the node again, in ms; it is refused on another outcome", async () => {
    const ps = await policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: wait-for-cmdb
    conditions: ${when("facts.country", "equal", "nl")}
    then: { outcome: defer, reason: "not in the CMDB yet", retryAfter: 600 }
`);
    const d = await ps.evaluate(inventory("n1.example.net", { country: "nl" }));
    assert.equal(d.outcome, "defer");
    assert.equal(d.retryAfterMs, 600_000);
    await assert.rejects(
      policy(`brokerSets: { eu: [eu1:4222] }
rules:
  - name: odd
    conditions: ${when("facts.country", "equal", "nl")}
    then: { brokerSet: eu, retryAfter: 60 }
`),
      /retryAfter is only used with outcome "defer"/,
    );
  });
});
