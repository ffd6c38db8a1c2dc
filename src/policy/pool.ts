import { Engine, type RuleProperties } from "json-rules-engine";
import { CUSTOM_OPERATORS } from "./operators.js";
import { resolvePath } from "./paths.js";

/**
 * json-rules-engine's Engine.run is not re-entrant (upstream issue #303: a run keeps its
 * status and rule results on the engine), so every evaluation borrows an engine of its own.
 * Engines are reused because building one (rules, conditions, operators) costs more than a run.
 */
export class EnginePool {
  private readonly idle: Engine[] = [];
  private created = 0;

  constructor(
    private readonly rules: RuleProperties[],
    private readonly maxIdle = 64,
  ) {}

  acquire(): Engine {
    return this.idle.pop() ?? this.make();
  }

  release(engine: Engine): void {
    if (this.idle.length < this.maxIdle) this.idle.push(engine);
  }

  stats(): { created: number; idle: number } {
    return { created: this.created, idle: this.idle.length };
  }

  private make(): Engine {
    this.created++;
    // allowUndefinedFacts: a fact root missing from an odd inventory reads as undefined, not a rejected run
    const engine = new Engine([], { allowUndefinedFacts: true, pathResolver: resolvePath });
    for (const op of CUSTOM_OPERATORS) engine.addOperator(op.name, (a: unknown, b: unknown) => op.evaluate!(a, b));
    for (const r of this.rules) engine.addRule(r);
    return engine;
  }
}
