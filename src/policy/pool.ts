import type { Engine, EngineResult, RuleProperties } from "json-rules-engine";
import type { ValueTable } from "./engine-rules.js";
import { FastEngine, FastRule, runEngine } from "./engine-fast.js";
import { CUSTOM_OPERATORS } from "./operators.js";
import { resolvePath } from "./paths.js";

/**
 * json-rules-engine's Engine.run is not re-entrant (upstream
 * https://github.com/CacheControl/json-rules-engine/issues/303, open: the run status lives on
 * the engine, so the first concurrent run to finish makes the others skip rules), so every
 * evaluation borrows an engine of its own. Engines are reused because building one costs
 * far more than a run, and their number is capped: evaluation is CPU work on one thread, so
 * more engines than that would only add memory, and a burst of thousands of nodes must not
 * build thousands of engines.
 */
// allowUndefinedFacts: a root missing from an odd inventory reads as undefined, not a rejected run
const ENGINE_OPTIONS = { allowUndefinedFacts: true, pathResolver: resolvePath };

export class EnginePool {
  private readonly idle: Engine[] = [];
  private readonly waiting: Array<(e: Engine) => void> = [];
  private created = 0;

  constructor(
    private readonly rules: RuleProperties[],
    private readonly values?: ValueTable,
    private readonly maxEngines = 32,
  ) {}

  /** an idle engine, a new one while under the cap, else the next one released */
  acquire(): Engine | Promise<Engine> {
    const e = this.idle.pop();
    if (e) return e;
    if (this.created < this.maxEngines) return this.make();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(engine: Engine): void {
    const next = this.waiting.shift();
    if (next) next(engine);
    else this.idle.push(engine);
  }

  /** an engine whose run failed may be half-run: replace it rather than reuse it */
  discard(): void {
    this.created--;
    const next = this.waiting.shift();
    if (next) next(this.make());
  }

  stats(): { created: number; idle: number; waiting: number } {
    return { created: this.created, idle: this.idle.length, waiting: this.waiting.length };
  }

  /** one run of an engine from this pool, facts given as plain values */
  run(engine: Engine, facts: Record<string, unknown>): Promise<EngineResult> {
    return runEngine(engine, facts, ENGINE_OPTIONS);
  }

  private make(): Engine {
    this.created++;
    const engine = new FastEngine([], ENGINE_OPTIONS);
    const values = this.values;
    if (values) {
      for (const op of CUSTOM_OPERATORS) engine.addOperator(op.name, (a: unknown, b: unknown) => op.evaluate!(a, values.resolve(b)));
      // list values arrive as tokens; in/notIn become Set lookups
      engine.addOperator("in", (a: unknown, b: unknown) => values.set(b)?.has(a) ?? false);
      engine.addOperator("notIn", (a: unknown, b: unknown) => !(values.set(b)?.has(a) ?? false));
    } else {
      for (const op of CUSTOM_OPERATORS) engine.addOperator(op.name, (a: unknown, b: unknown) => op.evaluate!(a, b));
    }
    for (const r of this.rules) engine.addRule(new FastRule(r));
    return engine;
  }
}
