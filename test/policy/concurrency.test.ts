import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Engine } from "json-rules-engine";
import { loadPolicySet } from "../../src/policy/index.js";
import { EnginePool } from "../../src/policy/pool.js";
import type { Decision } from "../../src/types/index.js";
import { inventory } from "./helpers.js";

const DCS: Array<[string, string, string]> = [
  ["ams1", "nl", "ams"],
  ["nyc1", "us", "nyc"],
  ["sfo2", "us", "sfo"],
  ["fra1", "de", "fra"],
  ["lon1", "gb", "lon"],
  ["par1", "fr", "par"],
  ["tyo1", "jp", "tyo"],
  ["zrh9", "de", ""],
];
const ROLES = ["web", "db", "lb", "cache", "worker", "decommissioned"];

function node(i: number) {
  const [dc, country] = DCS[i % DCS.length]!;
  const role = ROLES[i % ROLES.length]!;
  return inventory(`n${i}.example.net`, { dc, country, role, environment: "production", os: { family: "Debian" }, network: { hostname: `n${i}`, ip: `10.1.0.${i % 250}` }, hardware: { memory_mb: 4096 } });
}

/** what the fleet policy must decide for node(i), computed without the engine */
function expected(i: number): { outcome: Decision["outcome"]; brokerSet?: string; identity: string } {
  const [, , set] = DCS[i % DCS.length]!;
  const role = ROLES[i % ROLES.length]!;
  if (role === "decommissioned") return { outcome: "shutdown", identity: `n${i}.example.net` };
  if (!set) return { outcome: "defer", identity: `n${i}.example.net` };
  return { outcome: "configure", brokerSet: set, identity: `n${i}.example.net` };
}

describe("concurrent evaluations", () => {
  it("gives every node its own correct decision when 2000 evaluations run at once", async () => {
    const ps = await loadPolicySet({ policiesDir: "policies" });
    const n = 2000;
    const decisions = await Promise.all(Array.from({ length: n }, (_, i) => ps.evaluate(node(i), { explain: i % 3 === 0 })));
    for (let i = 0; i < n; i++) {
      const d = decisions[i]!;
      const e = expected(i);
      assert.equal(d.outcome, e.outcome, `node ${i}: ${d.reason}`);
      if (e.outcome === "configure") {
        assert.equal(d.brokerSet, e.brokerSet, `node ${i}`);
        assert.equal(d.configuration.identity, e.identity, `node ${i}`);
        assert.equal(d.configuration["plugin.choria.dc"], DCS[i % DCS.length]![0]);
        // the fired rules' explanations must be about this node's facts, not another's
        const site = d.fired.find((f) => f.name.startsWith("dc-"))!;
        assert.match(site.why, new RegExp(`saw "${DCS[i % DCS.length]![0]}"`), `node ${i}`);
      }
      if (i % 3 === 0) for (const f of d.fired) for (const c of f.conditions ?? []) if (c.fact === "facts.role") assert.equal(c.actual, ROLES[i % ROLES.length]);
    }
  });

  it("matches the results of running the same inventories one at a time", async () => {
    const ps = await loadPolicySet({ policiesDir: "policies" });
    const nodes = Array.from({ length: 300 }, (_, i) => node(i * 7 + 3));
    const sequential: Decision[] = [];
    for (const inv of nodes) sequential.push(await ps.evaluate(inv));
    const concurrent = await Promise.all(nodes.map((inv) => ps.evaluate(inv)));
    assert.deepEqual(concurrent, sequential);
  });

  // A canary for https://github.com/CacheControl/json-rules-engine/issues/303: when this fails,
  // upstream has made Engine.run re-entrant and src/policy/pool.ts can give way to one engine.
  it("canary for upstream json-rules-engine#303: one shared Engine still loses rules under concurrent runs, so the pool is needed", async () => {
    // Engine.run keeps its status on the engine: the first run to finish marks it FINISHED and
    // every other run still in flight skips its remaining priority levels.
    const rules = [
      { name: "first", priority: 10, conditions: { all: [{ fact: "delay", operator: "greaterThanInclusive", value: 0 }] }, event: { type: "first" } },
      { name: "second", priority: 1, conditions: { all: [{ fact: "delay", operator: "greaterThanInclusive", value: 0 }] }, event: { type: "second" } },
    ];
    const slowFact = (ms: number) => () => new Promise<number>((r) => setTimeout(() => r(ms), ms));
    const shared = new Engine(rules);
    const sharedRuns = await Promise.all(Array.from({ length: 20 }, (_, i) => shared.run({ delay: slowFact(i) })));
    const lost = sharedRuns.filter((r) => r.events.length !== 2).length;
    assert.ok(lost > 0, "upstream #303 no longer reproduces: a shared engine kept every rule; json-rules-engine may have fixed it, see whether src/policy/pool.ts can go");

    const pool = new EnginePool(rules, undefined, 64);
    const pooled = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const e = await pool.acquire();
        try {
          return await e.run({ delay: slowFact(i) });
        } finally {
          pool.release(e);
        }
      }),
    );
    assert.deepEqual(pooled.map((r) => r.events.length), Array(20).fill(2));
    assert.equal(pool.stats().created, 20, "one engine per concurrent run");
  });

  it("caps the number of engines: a burst waits for a free engine instead of building thousands", async () => {
    const rules = [{ name: "r", conditions: { all: [{ fact: "x", operator: "equal", value: 1 }] }, event: { type: "hit" } }];
    const pool = new EnginePool(rules, undefined, 4);
    const runs = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const e = await pool.acquire();
        try {
          return (await e.run({ x: i % 2 })).events.length;
        } finally {
          pool.release(e);
        }
      }),
    );
    assert.deepEqual(runs, Array.from({ length: 100 }, (_, i) => i % 2));
    assert.deepEqual(pool.stats(), { created: 4, idle: 4, waiting: 0 });
  });
});
