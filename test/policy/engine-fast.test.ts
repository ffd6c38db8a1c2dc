/**
 * src/policy/engine-fast.ts mirrors json-rules-engine internals. These tests make an upgrade of
 * json-rules-engine fail here, loudly, instead of changing decisions or explanations quietly:
 * the version and the mirrored files are pinned, and the fast path must produce exactly the
 * RuleResults json-rules-engine's own code produces.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { Engine, Rule, type EngineResult, type RuleProperties } from "json-rules-engine";
import { FAST_PATH, FastEngine, FastRule, INSTALLED_JSON_RULES_ENGINE, PINNED_JSON_RULES_ENGINE, runEngine } from "../../src/policy/engine-fast.js";
import { Evaluator } from "../../src/policy/evaluate.js";
import { loadPolicies } from "../../src/policy/load.js";
import { resolvePath } from "../../src/policy/paths.js";
import { inventories } from "../../bench/policy.bench.js";

const require = createRequire(import.meta.url);
const OPTIONS = { allowUndefinedFacts: true, pathResolver: resolvePath };

/**
 * sha256 of the json-rules-engine files engine-fast.ts mirrors, as re-read for 7.3.1. When
 * these change, re-read them against engine-fast.ts, then update the hashes and
 * PINNED_JSON_RULES_ENGINE together.
 */
const MIRRORED: Record<string, string> = {
  "dist/rule.js": "0b847922414bb080ae30ae1e9c2a0ea6e4501c55d107b21f1dc2ba3600629b36",
  "dist/engine.js": "1f53281c9b0af838d82bb5c11feef4d61949d99df81362e3d373b6915e384564",
  "dist/condition.js": "e5ccb224bbf4b35636b6e131eb76dae93eaa767cc0f3277a30324785466750ce",
  "dist/almanac.js": "f706d3b3f2031a3b29c126dd7cd24516a1a5eae8a029ab8c9be74486991a017a",
  "dist/rule-result.js": "9e358a5a3aadb93ab52397da158a54959aa776a8851a80b749d78f8517a6b72c",
  "dist/operator-map.js": "d6316f2ce8bb59077cf83216c8b071f2f585ad2c6572e382dc9d455e6a2691ee",
};

function sha256(rel: string): string {
  return createHash("sha256").update(readFileSync(require.resolve(`json-rules-engine/${rel}`))).digest("hex");
}

/** every node of a RuleResult's condition tree: prototype identity and own properties, in order */
function shape(v: unknown, protos: object[] = []): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => shape(x, protos));
  const proto = Object.getPrototypeOf(v) as object;
  if (!protos.includes(proto)) protos.push(proto);
  const out: Record<string, unknown> = { "<proto>": protos.indexOf(proto) };
  for (const k of Object.keys(v)) out[k] = shape((v as Record<string, unknown>)[k], protos);
  return out;
}

/** a run's results by rule name (json-rules-engine records them in settlement order) */
function byName(r: EngineResult) {
  const rows = [...r.results.map((x) => ["ok", x] as const), ...r.failureResults.map((x) => ["fail", x] as const)];
  return rows
    .map(([group, x]) => ({ group, name: x.name, proto: Object.getPrototypeOf(x) as object, keys: Object.keys(x), json: x.toJSON(false), shape: shape(x) }))
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

const sortedEvents = (r: EngineResult) => ({ success: r.events.map((e) => e.type).sort(), failure: r.failureEvents.map((e) => e.type).sort() });

/** counts json-rules-engine's own Rule.evaluate calls, i.e. rules that left the fast path */
async function upstreamEvaluations<T>(f: () => Promise<T>): Promise<{ value: T; calls: number }> {
  const proto = Rule.prototype as unknown as { evaluate: (...a: unknown[]) => unknown };
  const original = proto.evaluate;
  let calls = 0;
  proto.evaluate = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.apply(this, a);
  };
  try {
    return { value: await f(), calls };
  } finally {
    proto.evaluate = original;
  }
}

function engines(rules: RuleProperties[], setup: (e: Engine) => void = () => undefined): { upstream: Engine; fast: Engine } {
  const upstream = new Engine(rules, OPTIONS);
  const fast = new FastEngine([], OPTIONS);
  for (const r of rules) fast.addRule(new FastRule(r));
  setup(upstream);
  setup(fast);
  return { upstream, fast };
}

const leaf = (fact: string, operator: string, value: unknown, more: Record<string, unknown> = {}) => ({ fact, operator, value, ...more });

const RULES: RuleProperties[] = [
  { name: "all", conditions: { all: [leaf("facts", "equal", "nl", { path: "country" }), leaf("version", "equal", "1"), leaf("n", "greaterThan", 3)] }, event: { type: "matched" } },
  { name: "any", priority: 5, conditions: { any: [leaf("facts", "equal", "xx", { path: "country" }), leaf("n", "lessThan", 10), leaf("facts", "equal", null, { path: "nothing" })] }, event: { type: "matched" } },
  { name: "not-root", priority: 5, conditions: { not: { any: [leaf("n", "equal", 4), { not: leaf("version", "equal", "2") }] } }, event: { type: "matched" } },
  { name: "nested", priority: 3, conditions: { all: [{ any: [leaf("facts", "equal", 1, { path: "deep.x" }), { all: [] }] }, { not: { all: [leaf("n", "notEqual", 3)] } }, leaf("facts", "equal", "nl", { path: "country" })] }, event: { type: "matched" } },
  { name: "empty-any", conditions: { any: [] }, event: { type: "matched" } },
  { name: "single", conditions: { all: [leaf("n", "greaterThanInclusive", 4)] }, event: { type: "matched" } },
  // the numeric operators' fact validators: a string fact is never greater than anything
  { name: "validator", conditions: { any: [leaf("version", "greaterThan", 0), leaf("facts", "lessThan", 9, { path: "country" })] }, event: { type: "matched" } },
  // a path below a primitive fact yields the fact itself, as in Almanac.factValue
  { name: "path-on-primitive", conditions: { all: [leaf("version", "equal", "1", { path: "x.y" })] }, event: { type: "matched" } },
  // condition priorities: levels run highest first, and a decided `all`/`any` skips the rest
  { name: "levels-all", conditions: { all: [leaf("n", "equal", 0, { priority: 9 }), leaf("n", "equal", 4, { priority: 2 }), leaf("version", "equal", "1")] }, event: { type: "matched" } },
  { name: "levels-any", conditions: { any: [leaf("n", "equal", 4, { priority: 9 }), leaf("n", "equal", 0, { priority: 2 })] }, event: { type: "matched" } },
  { name: "levels-mixed", conditions: { any: [leaf("n", "equal", 0, { priority: 1 }), leaf("n", "equal", 4, { priority: 1 }), { all: [leaf("n", "equal", 4)], priority: 7 }] }, event: { type: "matched" } },
  { name: "levels-nested", conditions: { all: [leaf("n", "equal", 0, { priority: 9 }), { any: [leaf("n", "equal", 4), { not: leaf("version", "equal", "1") }] }] }, event: { type: "matched" } },
  { name: "custom", priority: 2, conditions: { all: [leaf("tags", "hasAll", "a,b"), leaf("n", "even", true)] }, event: { type: "matched" } },
];

const FACTS = { facts: { country: "nl", deep: { x: 1 } }, version: "1", n: 4, tags: ["a", "b", "c"] };

const customOperators = (e: Engine) => {
  e.addOperator("hasAll", (a: unknown, b: unknown) => Array.isArray(a) && String(b).split(",").every((x) => a.includes(x)));
  e.addOperator("even", (a: unknown, b: unknown) => (typeof a === "number" && a % 2 === 0) === b);
};

describe("json-rules-engine fast path (engine-fast.ts)", () => {
  it("is pinned to the json-rules-engine version and files it mirrors", () => {
    assert.equal(
      INSTALLED_JSON_RULES_ENGINE,
      PINNED_JSON_RULES_ENGINE,
      `json-rules-engine is now ${INSTALLED_JSON_RULES_ENGINE}: the policy fast path is OFF (evaluation ~4x slower) until src/policy/engine-fast.ts is re-checked against it and PINNED_JSON_RULES_ENGINE bumped`,
    );
    assert.equal(FAST_PATH, true, "the fast path must be on for the pinned version");
    for (const [rel, want] of Object.entries(MIRRORED)) {
      assert.equal(sha256(rel), want, `json-rules-engine/${rel} changed: re-check src/policy/engine-fast.ts against it, then update MIRRORED`);
    }
  });

  it("produces the same RuleResults, results and events as json-rules-engine's own code", async () => {
    const { upstream, fast } = engines(RULES, customOperators);
    const expected = await upstream.run(FACTS);
    const { value: actual, calls } = await upstreamEvaluations(() => runEngine(fast, FACTS, OPTIONS));
    assert.equal(calls, 0, "every rule above takes the fast path");
    assert.deepEqual(byName(actual), byName(expected));
    assert.deepEqual(sortedEvents(actual), sortedEvents(expected));
    assert.equal(byName(actual).length, RULES.length);
  });

  it("rejects the run like json-rules-engine on an unknown operator", async () => {
    const rules = [{ name: "bad", conditions: { all: [leaf("n", "nope", 1)] }, event: { type: "matched" } }];
    const { upstream, fast } = engines(rules);
    await assert.rejects(upstream.run(FACTS), /^Error: Unknown operator: nope$/);
    await assert.rejects(runEngine(fast, FACTS, OPTIONS), /^Error: Unknown operator: nope$/);
  });

  it("leaves what it does not mirror to json-rules-engine: fact references, params, dynamic and undefined facts, listeners", async () => {
    const rules: RuleProperties[] = [
      { name: "fact-ref", conditions: { all: [leaf("n", "equal", { fact: "m" })] }, event: { type: "matched" } },
      { name: "params", conditions: { all: [leaf("n", "equal", 4, { params: { a: 1 } })] }, event: { type: "matched" } },
      { name: "dynamic", conditions: { all: [leaf("dyn", "equal", 8)] }, event: { type: "matched" } },
      { name: "event-params", conditions: { all: [leaf("n", "equal", 4)] }, event: { type: "matched", params: { x: 1 } } },
      { name: "undefined-fact", conditions: { any: [leaf("missing", "equal", null), leaf("n", "equal", 4)] }, event: { type: "matched" } },
      { name: "rule-listener", conditions: { all: [leaf("n", "equal", 4)] }, event: { type: "matched" }, onSuccess: () => undefined },
      ...RULES,
    ];
    const facts = { ...FACTS, m: 4, dyn: () => 8 };
    const { upstream, fast } = engines(rules, customOperators);
    const expected = await upstream.run(facts);
    const { value: actual, calls } = await upstreamEvaluations(() => runEngine(fast, facts, OPTIONS));
    assert.equal(calls, 6, "the six rules above run json-rules-engine's Rule.evaluate");
    assert.deepEqual(byName(actual), byName(expected));

    // conditions replaced after construction were never checked: json-rules-engine evaluates them
    const replaced = new FastRule({ name: "replaced", conditions: { all: [leaf("n", "equal", 4)] }, event: { type: "matched" } });
    replaced.setConditions({ all: [leaf("n", "equal", { fact: "m" })] });
    const alone = new FastEngine([], OPTIONS);
    alone.addRule(replaced);
    const rerun = await upstreamEvaluations(() => runEngine(alone, facts, OPTIONS));
    assert.equal(rerun.calls, 1);
    assert.equal(rerun.value.results.length, 1);

    // a rule built without conditions behaves as json-rules-engine's until it has some
    const bare = new FastRule({ name: "bare", event: { type: "matched" } } as unknown as RuleProperties);
    bare.setConditions({ all: [leaf("n", "equal", 4)] });
    const bareEngine = new FastEngine([], OPTIONS);
    bareEngine.addRule(bare);
    const bareRun = await upstreamEvaluations(() => runEngine(bareEngine, facts, OPTIONS));
    assert.equal(bareRun.calls, 1);
    assert.equal(bareRun.value.results.length, 1);

    // a listener on the engine is served by json-rules-engine's own Engine.evaluateRules
    const seen: string[] = [];
    fast.on("success", (e: { type: string }) => seen.push(e.type));
    const listened = await runEngine(fast, facts, OPTIONS);
    assert.deepEqual(byName(listened), byName(expected));
    assert.equal(seen.length, expected.results.length);
  });

  it("gives the shipped policy's rules exactly json-rules-engine's results, all on the fast path", async () => {
    const { policies } = loadPolicies({ policiesDir: "policies", rulesDir: "rules" });
    const evaluator = new Evaluator([...policies.values()][0]!);
    const engine = (await evaluator.pool.acquire()) as Engine;
    for (const inv of inventories(60)) {
      const facts: Record<string, unknown> = {};
      for (const root of evaluator.policy.roots) facts[root] = (inv as unknown as Record<string, unknown>)[root];
      // Engine.run without our Almanac: json-rules-engine's own evaluateRules and Rule.evaluate
      const expected = await engine.run(facts);
      const { value: actual, calls } = await upstreamEvaluations(() => evaluator.pool.run(engine, facts));
      assert.equal(calls, 0, inv.identity);
      assert.deepEqual(byName(actual), byName(expected), inv.identity);
    }
  });
});
