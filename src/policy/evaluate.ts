import type { RuleResult } from "json-rules-engine";
import { deferDecision, type Decision, type Inventory } from "../types/index.js";
import { traceCondition, toFiredRule, type Explanation, type RuleTrace } from "./explain.js";
import { configurationOrigins, mergeRules } from "./merge.js";
import { DEFAULT_VALIDITY_DAYS, type CompiledPolicy, type CompiledRule } from "./model.js";
import { EnginePool } from "./pool.js";
import { engineRules, ValueTable } from "./engine-rules.js";

/**
 * Runs a compiled policy against inventories. The same instance serves the daemon, `policy
 * eval` and `policy test`, so a dry run shows exactly what the daemon would do.
 */
export class Evaluator {
  readonly pool: EnginePool;
  private readonly byName: Map<string, CompiledRule>;

  constructor(readonly policy: CompiledPolicy) {
    this.byName = new Map(policy.rules.map((r) => [r.name, r]));
    const values = new ValueTable();
    this.pool = new EnginePool(engineRules(policy.rules, values), values);
  }

  async evaluate(inv: Inventory, opts: { explain?: boolean } = {}): Promise<Decision> {
    return (await this.run(inv, opts.explain === true, false)).decision;
  }

  async explain(inv: Inventory): Promise<Explanation> {
    return this.run(inv, true, true);
  }

  private ref() {
    return { name: this.policy.name, version: this.policy.version, hash: this.policy.hash };
  }

  /** never throws: anything unexpected becomes a defer naming the cause */
  private async run(inv: Inventory, withConditions: boolean, withTraces: boolean): Promise<Explanation> {
    const bad = checkInventory(inv);
    if (bad) return { decision: this.defer(`invalid inventory: ${bad}`), rules: [] };
    let results: RuleResult[];
    const engine = await this.pool.acquire();
    try {
      const facts: Record<string, unknown> = {};
      for (const root of this.policy.roots) facts[root] = (inv as unknown as Record<string, unknown>)[root];
      const r = await this.pool.run(engine, facts);
      results = r.results.concat(r.failureResults);
    } catch (e) {
      this.pool.discard();
      return { decision: this.defer(`policy evaluation failed: ${(e as Error)?.message ?? String(e)}`), rules: [] };
    }
    this.pool.release(engine);

    try {
      const matched = new Map<string, RuleResult>();
      for (const res of results) if (res.result === true) matched.set(res.name, res);
      const fired = this.policy.rules.filter((r) => matched.has(r.name));
      const ctx = Object.assign({}, inv, { vars: this.policy.vars }) as unknown as Record<string, unknown>;
      const merged = mergeRules(this.policy, fired, ctx, inv.identity);
      // merged.decision is this call's own object: completing it in place, rather than spreading
      // it into a new one, gives the same object (same keys, same order) for a quarter of run()'s time
      const decision = merged.decision as Decision;
      decision.policy = this.ref();
      decision.fired = merged.applied.map((r) => toFiredRule(r, traceCondition(r.condition, matched.get(r.name)!.conditions as never, true), withConditions));
      if (!withTraces) return { decision, rules: [] };
      const byResult = new Map(results.map((r) => [r.name, r]));
      const applied = new Set(merged.applied.map((r) => r.name));
      const stopped = new Set(merged.stopped.map((r) => r.name));
      // merge order, so the explanation reads top-down like the merge
      const ordered = [...this.policy.rules].sort((a, b) => b.priority - a.priority || b.index - a.index);
      const rules: RuleTrace[] = ordered.map((rule) => {
        const res = byResult.get(rule.name);
        const t: RuleTrace = {
          name: rule.name,
          ruleSet: rule.ruleSet,
          priority: rule.priority,
          source: rule.source,
          matched: res?.result === true,
          applied: applied.has(rule.name),
          conditions: traceCondition(rule.condition, res?.conditions as never, res?.result === true),
        };
        if (stopped.has(rule.name)) t.note = `stopped by rule ${merged.stoppedBy!.name}`;
        return t;
      });
      return { decision, rules, origins: configurationOrigins(this.policy, merged.applied, decision.configuration) };
    } catch (e) {
      return { decision: this.defer(`policy evaluation failed: ${(e as Error)?.message ?? String(e)}`), rules: [] };
    }
  }

  private defer(reason: string): Decision {
    return deferDecision(reason, this.ref(), DEFAULT_VALIDITY_DAYS);
  }

  rule(name: string): CompiledRule | undefined {
    return this.byName.get(name);
  }
}

/** the daemon hands over whatever a node sent; shapes are checked, not trusted */
function checkInventory(inv: unknown): string | undefined {
  if (typeof inv !== "object" || inv === null) return "not an object";
  const i = inv as Record<string, unknown>;
  if (typeof i.identity !== "string" || i.identity === "") return "identity must be a non-empty string";
  if (typeof i.facts !== "object" || i.facts === null || Array.isArray(i.facts)) return "facts must be a map";
  for (const k of ["agents", "classes", "collectives"]) {
    const v = i[k];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) return `${k} must be a list of strings`;
  }
  if (i.version !== undefined && typeof i.version !== "string") return "version must be a string";
  return undefined;
}
