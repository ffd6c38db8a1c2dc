import { test } from "node:test";
import assert from "node:assert/strict";
import { fitJson, measureJson, previewJson } from "../../src/types/json-bounds.js";
import { generateFacts } from "../../src/sim/index.js";

const NO_LIMIT = { maxDepth: 1e9, maxBytes: Number.MAX_SAFE_INTEGER };

/** JSON.parse reads this depth; JSON.stringify overflows the stack on it */
function deep(depth: number): unknown {
  return JSON.parse('{"k":'.repeat(depth) + "1" + "}".repeat(depth));
}

test("the measured length is JSON.stringify's, compact and indented, for plain data", () => {
  const values: unknown[] = [
    {},
    [],
    { a: [] },
    { a: {}, b: [1, [2, {}]], c: null, d: true, e: false, f: -1.5e-7, g: "x", h: [[[]]] },
    [null, "", 0, { "": "" }],
    { skipped: undefined, kept: 1, list: [undefined, 2] },
    "a string",
    42,
    ...["a.example.net", "b.example.net", "c.example.net"].map((id) => ({ agents: ["rpcutil"], facts: generateFacts(7, id), version: "0.29.4" })),
  ];
  for (const v of values) {
    for (const indent of [0, 2, 4]) {
      const m = measureJson(v, NO_LIMIT, indent);
      assert.ok(m.ok);
      assert.equal(m.bytes, JSON.stringify(v, null, indent).length, `${JSON.stringify(v)} at indent ${indent}`);
    }
  }
});

test("depth counts objects and lists nested in each other", () => {
  assert.deepEqual(measureJson(1, NO_LIMIT), { ok: true, depth: 0, bytes: 1 });
  assert.equal((measureJson({}, NO_LIMIT) as { depth: number }).depth, 1);
  assert.equal((measureJson({ a: [{}] }, NO_LIMIT) as { depth: number }).depth, 3);
  assert.equal((measureJson(deep(20_000), NO_LIMIT) as { depth: number }).depth, 20_000);
});

test("a value 20,000 deep or megabytes large is refused at the limit, without recursion", () => {
  const tooDeep = measureJson(deep(20_000), { maxDepth: 100, maxBytes: 1e9 });
  assert.deepEqual(tooDeep, { ok: false, problem: "too_deep", message: "nested more than 100 levels deep" });
  const big = { list: Array.from({ length: 100_000 }, (_, i) => `value-${i}`) };
  const tooLarge = measureJson(big, { maxDepth: 100, maxBytes: 64 * 1024 });
  assert.deepEqual(tooLarge, { ok: false, problem: "too_large", message: `more than ${64 * 1024} bytes as JSON` });
  assert.ok(measureJson(deep(100), { maxDepth: 100, maxBytes: 1e9 }).ok, "exactly at the limit is fine");
});

test("previews and fitted values never stringify what would overflow or run to megabytes", () => {
  assert.throws(() => JSON.stringify(deep(20_000)), RangeError);
  assert.equal(previewJson(deep(20_000)), "<an object nested more than 64 levels deep>");
  assert.equal(previewJson([deep(20_000)]), "<a list nested more than 64 levels deep>");
  assert.equal(previewJson("RS256"), '"RS256"');
  assert.equal(previewJson(undefined), "undefined");
  assert.equal(previewJson("x".repeat(100), 40), `"${"x".repeat(36)}...`);
  assert.equal(fitJson(deep(20_000)), "<an object nested more than 64 levels deep>");
  const ok = { a: [1, 2] };
  assert.equal(fitJson(ok), ok);
});
