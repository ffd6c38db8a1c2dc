/**
 * Synchronous hot path for json-rules-engine, for the condition trees our policies compile to.
 *
 * Why: profiling the daemon showed most of the CPU of a policy evaluation inside
 * json-rules-engine rather than in the policy: every Rule.evaluate deep-clones the rule's
 * conditions with the generic `clone` package (RuleResult's constructor; its circular-reference
 * bookkeeping is quadratic in the number of nodes), and every condition, fact lookup and rule
 * costs several promises although our facts are plain values and our operators synchronous.
 *
 * What stays json-rules-engine's: Engine.run (priority levels, run status, results and events
 * in the Almanac), the Condition objects and their validation, the OperatorMap and Operator
 * (including the numeric operators' fact validators), Rule.prioritizeConditions, and the
 * RuleResult objects the callers read. What is replaced, for rules and runs that qualify (see
 * fastTree and FastRule.canRunSync): the per-run copy of the condition tree (each node copied
 * as it is evaluated, instead of `clone` on the whole tree first) and the promise plumbing of
 * Rule.evaluate and Engine.evaluateRules. On the shipped policy this took bench/policy.bench.ts
 * from ~12k to ~50k evaluations/s.
 * Anything else (condition references, fact-valued `value`s, params, event params, dynamic
 * facts, listeners, replaceFactsInEventParams) takes json-rules-engine's own code unchanged.
 *
 * This mirrors json-rules-engine 7.3.1's dist/rule.js (Rule.evaluate), dist/engine.js
 * (Engine.evaluateRules), dist/condition.js (Condition.evaluate), dist/almanac.js
 * (Almanac.factValue) and dist/rule-result.js. Any other version turns the fast path off
 * (FAST_PATH below) and test/policy/engine-fast.test.ts fails until the mirror is re-checked.
 *
 * Retire it when json-rules-engine evaluates without the per-run clone and promise per node:
 * upstream https://github.com/CacheControl/json-rules-engine/issues/58 (slow performance, open)
 * and the bulk-evaluation PR https://github.com/CacheControl/json-rules-engine/pull/432 (open).
 * (The engine pool in pool.ts is the other workaround: it waits on issue #303.)
 */
import { createRequire } from "node:module";
import { Almanac, Engine, Rule, type EngineResult, type RuleProperties, type RuleResult } from "json-rules-engine";

/** the json-rules-engine version this file mirrors; bump only after re-reading the files above */
export const PINNED_JSON_RULES_ENGINE = "7.3.1";

const require = createRequire(import.meta.url);

/** the installed version, and RuleResult (not exported by json-rules-engine's index) */
function upstream(): { version: string; ruleResultProto?: object } {
  const version = (require("json-rules-engine/package.json") as { version: string }).version;
  try {
    const mod = require("json-rules-engine/dist/rule-result.js") as { default?: { prototype: object } };
    return { version, ruleResultProto: mod.default?.prototype };
  } catch {
    return { version };
  }
}

const UPSTREAM = upstream();
export const INSTALLED_JSON_RULES_ENGINE = UPSTREAM.version;
const RULE_RESULT_PROTO = UPSTREAM.ruleResultProto;
/** false on any other json-rules-engine: everything then runs json-rules-engine's own code */
export const FAST_PATH = UPSTREAM.version === PINNED_JSON_RULES_ENGINE && RULE_RESULT_PROTO !== undefined;

/** engine.js status constant; not exported */
const RUNNING = "RUNNING";

/** json-rules-engine's internal shapes this file relies on (all present in 7.3.1) */
interface Cond {
  [key: string]: unknown;
  all?: Cond[];
  any?: Cond[];
  not?: Cond;
  fact?: string;
  path?: string;
  operator?: string;
  value?: unknown;
  priority?: number;
  factResult?: unknown;
  valueResult?: unknown;
  result?: unknown;
}
interface OperatorLike {
  evaluate(factValue: unknown, value: unknown): unknown;
}
interface EngineInternals {
  status: string;
  operators: { get(name: string): OperatorLike | null };
  getFact(id: string): { priority?: number } | undefined;
  hasListeners(type?: string): boolean;
  replaceFactsInEventParams: boolean;
}
interface RuleInternals {
  engine: EngineInternals;
  ruleEvent: { type: string; params?: unknown };
  hasListeners(type?: string): boolean;
  prioritizeConditions(conditions: Cond[]): Cond[][];
}
interface RuleResultInternals {
  conditions: Cond;
  event: object;
  priority: number;
  name: string;
  result: unknown;
  setResult(result: unknown): void;
}
interface AlmanacInternals {
  addResult(r: RuleResult): void;
  addEvent(e: unknown, outcome: "success" | "failure"): void;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Condition.booleanOperator: the same keys in the same order */
function booleanOperator(c: Cond): "any" | "all" | "not" | undefined {
  if (hasOwn(c, "any")) return "any";
  if (hasOwn(c, "all")) return "all";
  if (hasOwn(c, "not")) return "not";
  return undefined;
}

/**
 * true when every node is one the synchronous path implements exactly: all/any/not groups and
 * tests of a fact (no params) against a plain value. Every property other than a group's
 * children must be a primitive and every enumerable property an own one, so that copyNode
 * (Object.assign onto the same prototype) copies a node exactly as `clone` would.
 */
function fastTree(c: Cond): boolean {
  for (const k in c) if (!hasOwn(c, k)) return false;
  if (hasOwn(c, "condition") || hasOwn(c, "params")) return false;
  const op = booleanOperator(c);
  for (const k of Object.keys(c)) {
    const v = c[k];
    if (k !== op && typeof v === "object" && v !== null) return false;
  }
  if (op === "not") return typeof c.not === "object" && c.not !== null && !Array.isArray(c.not) && fastTree(c.not);
  if (op) return Array.isArray(c[op]) && (c[op] as Cond[]).every(fastTree);
  return true;
}

/**
 * What `clone` produces for a tree that passed fastTree: a new object with the same prototype
 * and the same enumerable properties, the group's children copied the same way.
 */
function copyTree(c: Cond): Cond {
  const out = copyNode(c);
  const op = booleanOperator(c);
  if (op === "not") out.not = copyTree(c.not!);
  else if (op) out[op] = (c[op] as Cond[]).map(copyTree);
  return out;
}

/** one node of copyTree, its children still shared with `c` */
function copyNode(c: Cond): Cond {
  return Object.assign(Object.create(Object.getPrototypeOf(c) as object) as Cond, c);
}

/** thrown inside the synchronous path when a fact is not a plain value in a FactAlmanac */
const NOT_SYNC = Symbol("not-sync");

/**
 * An Almanac (json-rules-engine's per-run fact store, passed as run option `almanac`) holding
 * the run's facts as plain values. json-rules-engine would wrap each in a Fact, hash a cache
 * key for it and keep a promise of its value; here a lookup is a property read. Facts given as
 * functions are registered the json-rules-engine way and always take its own path.
 */
export class FactAlmanac extends Almanac {
  private readonly values: Record<string, unknown> = {};

  constructor(
    facts: Record<string, unknown>,
    private readonly options: { allowUndefinedFacts: boolean; pathResolver: (value: object, path: string) => unknown },
  ) {
    super(options);
    for (const id of Object.keys(facts)) {
      const v = facts[id];
      if (typeof v === "function") super.addFact(id, v as () => unknown);
      else this.values[id] = v;
    }
  }

  /** Almanac.factValue for a constant fact, without the promise; NOT_SYNC when not ours */
  valueSync(id: string, path: string | undefined): unknown {
    if (!hasOwn(this.values, id)) throw NOT_SYNC;
    const v = this.values[id];
    if (path && v !== null && v !== undefined && typeof v === "object") return this.options.pathResolver(v, path);
    return v;
  }

  // json-rules-engine's own code paths (Condition.evaluate, getValue) land here
  override factValue<T>(id: string, params?: Record<string, unknown>, path?: string): Promise<T> {
    if (hasOwn(this.values, id)) return Promise.resolve(this.valueSync(id, path) as T);
    return super.factValue<T>(id, params, path);
  }
}

/**
 * A json-rules-engine Rule whose evaluate runs synchronously when it can. The result is the
 * RuleResult Rule.evaluate would resolve to: same class, same fields, the same condition tree
 * with the same result/factResult/valueResult on every node (the root group, as upstream,
 * gets none).
 */
export class FastRule extends Rule {
  /** the conditions checked by fastTree; setConditions() replaces them, and with them the fast path */
  private readonly checked: unknown;

  constructor(props: RuleProperties) {
    super(props);
    const self = this as unknown as RuleInternals & { name: unknown };
    // a Rule may be built without conditions (set later, or never)
    const fast =
      FAST_PATH &&
      typeof this.conditions === "object" &&
      this.conditions !== null &&
      fastTree(this.conditions as unknown as Cond) &&
      booleanOperator(this.conditions as unknown as Cond) !== undefined &&
      self.ruleEvent.params === undefined &&
      (typeof self.name !== "object" || self.name === null);
    this.checked = fast ? this.conditions : undefined;
  }

  /** the run-time half of the check: nothing may observe the promises we skip */
  canRunSync(almanac: unknown): almanac is FactAlmanac {
    const self = this as unknown as RuleInternals;
    // Rule.evaluate emits only these two on the rule
    return (
      this.checked !== undefined &&
      this.conditions === this.checked &&
      almanac instanceof FactAlmanac &&
      !self.engine.replaceFactsInEventParams &&
      !self.hasListeners("success") &&
      !self.hasListeners("failure")
    );
  }

  // not in json-rules-engine's type declarations, hence no `override`
  evaluate(almanac: Almanac): Promise<RuleResult> {
    if (this.canRunSync(almanac)) {
      try {
        return Promise.resolve(this.evaluateSync(almanac));
      } catch (e) {
        if (e !== NOT_SYNC) return Promise.reject(e);
      }
    }
    return (Rule.prototype as unknown as { evaluate(a: Almanac): Promise<RuleResult> }).evaluate.call(this, almanac);
  }

  /**
   * Rule.evaluate without promises. Throws NOT_SYNC (before anything outside this call was
   * touched) when a fact is not a plain value; json-rules-engine's evaluate then runs instead.
   */
  evaluateSync(almanac: FactAlmanac): RuleResult {
    const self = this as unknown as RuleInternals & { priority: number; name: string };
    // RuleResult's constructor, the conditions copied node by node as they are evaluated
    // (evaluateCopy) in place of clone()
    const template = this.conditions as unknown as Cond;
    const root = copyNode(template);
    const ruleResult = Object.create(RULE_RESULT_PROTO!) as RuleResultInternals;
    ruleResult.conditions = root;
    ruleResult.event = Object.assign({}, self.ruleEvent);
    ruleResult.priority = self.priority;
    ruleResult.name = self.name;
    ruleResult.result = null;

    const run: SyncRun = { rule: self, almanac };
    let result: unknown;
    // upstream tests these by truthiness, in this order, and sets no result on the root group
    if (root.any) result = evaluateGroup(run, template, root, "any");
    else if (root.all) result = evaluateGroup(run, template, root, "all");
    else {
      const child = evaluateCopy(run, template.not!);
      root.not = child;
      result = !child.result;
    }
    ruleResult.setResult(result);
    return ruleResult as unknown as RuleResult;
  }
}

/*
 * Rule.evaluate's inner functions, synchronous. Module functions rather than closures: a
 * closure per call is what upstream does, and under tsx each one also pays a __name wrapper.
 */
interface SyncRun {
  rule: RuleInternals;
  almanac: FactAlmanac;
}

/**
 * Rule.evaluate's evaluateCondition, applied to a copy of template node `t` made on the way.
 * Returns the copy; its `result` is what evaluateCondition returns.
 */
function evaluateCopy(run: SyncRun, t: Cond): Cond {
  const c = copyNode(t);
  const op = booleanOperator(t);
  if (op) {
    let v: unknown;
    if (op === "not") {
      const child = evaluateCopy(run, t.not!);
      c.not = child;
      v = !child.result;
    } else v = evaluateGroup(run, t, c, op);
    c.result = v === true;
    return c;
  }
  // Condition.evaluate; fastTree guarantees a plain value and no params
  const operator = run.rule.engine.operators.get(c.operator!);
  if (!operator) throw new Error("Unknown operator: " + c.operator);
  const rightHandSideValue = c.value;
  const leftHandSideValue = run.almanac.valueSync(c.fact!, c.path);
  const passes = operator.evaluate(leftHandSideValue, rightHandSideValue);
  c.factResult = leftHandSideValue;
  c.valueResult = rightHandSideValue;
  c.result = passes;
  return c;
}

/**
 * Rule.evaluate's prioritizeAndRun over the children of group `t` (operator all/any), their
 * copies going to `c[op]` in their original order. Every child of a priority level is
 * evaluated (upstream: Promise.all, then every/some); a level after the group is decided is
 * not, and its children are copied without results, as upstream leaves them.
 */
function evaluateGroup(run: SyncRun, t: Cond, c: Cond, op: "all" | "any"): unknown {
  const kids = t[op] as Cond[];
  const n = kids.length;
  if (n === 0) {
    c[op] = [];
    return true;
  }
  if (n === 1) {
    const only = evaluateCopy(run, kids[0]!);
    c[op] = [only];
    return only.result;
  }
  if (singleLevel(run, kids)) {
    const copies: Cond[] = [];
    let all = true;
    let some = false;
    for (const k of kids) {
      const copy = evaluateCopy(run, k);
      copies.push(copy);
      if (copy.result === true) some = true;
      else all = false;
    }
    c[op] = copies;
    // upstream: (op === "all") || some for any, (op === "all") && all for all
    return op === "any" ? some : all;
  }
  const copies: Array<Cond | undefined> = kids.map(() => undefined);
  let setResult: unknown = op === "all";
  for (const set of run.rule.prioritizeConditions(kids)) {
    // upstream: setResult || evaluateConditions(set, some) for any, setResult && ... for all
    if (op === "any" ? setResult : !setResult) continue;
    let all = true;
    let some = false;
    for (const k of set) {
      const copy = evaluateCopy(run, k);
      copies[kids.indexOf(k)] = copy;
      if (copy.result === true) some = true;
      else all = false;
    }
    setResult = op === "any" ? some : all;
  }
  c[op] = copies.map((copy, i) => copy ?? copyTree(kids[i]!));
  return setResult;
}

/** true when Rule.prioritizeConditions would return a single set: `conditions`, in order */
function singleLevel(run: SyncRun, conditions: Cond[]): boolean {
  let first: number | undefined;
  for (const c of conditions) {
    let p = c.priority;
    if (!p) p = run.rule.engine.getFact(c.fact!)?.priority || 1;
    if (first === undefined) first = p;
    else if (p !== first) return false;
  }
  return true;
}

/**
 * An Engine whose evaluateRules runs FastRules synchronously: one resolved promise per
 * priority level instead of several per rule. Results and events go to the Almanac as in
 * Engine.evaluateRules; within a level they are recorded in rule order (upstream records them
 * in promise-settlement order, which callers must not rely on and ours do not).
 */
export class FastEngine extends Engine {
  evaluateRules(ruleArray: Rule[], almanac: Almanac): Promise<unknown> {
    const self = this as unknown as EngineInternals;
    if (!FAST_PATH || !(almanac instanceof FactAlmanac) || self.hasListeners()) {
      return (Engine.prototype as unknown as { evaluateRules(r: Rule[], a: Almanac): Promise<unknown> }).evaluateRules.call(this, ruleArray, almanac);
    }
    let pending: Array<Promise<void>> | undefined;
    try {
      for (const rule of ruleArray) {
        // upstream checks the status of every rule before any of them runs; nothing here can change it
        if (self.status !== RUNNING) continue;
        let ruleResult: RuleResult | undefined;
        if (rule instanceof FastRule && rule.canRunSync(almanac)) {
          try {
            ruleResult = rule.evaluateSync(almanac);
          } catch (e) {
            if (e !== NOT_SYNC) throw e;
          }
        }
        if (ruleResult) record(almanac, ruleResult);
        else (pending ??= []).push((rule as unknown as { evaluate(a: Almanac): Promise<RuleResult> }).evaluate(almanac).then((r) => record(almanac, r)));
      }
    } catch (e) {
      // the run fails with this error; rules already under way must not fail unhandled
      for (const p of pending ?? []) p.catch(() => undefined);
      return Promise.reject(e);
    }
    return pending ? Promise.all(pending) : Promise.resolve();
  }
}

/** what Engine.evaluateRules does with a rule's result when nobody listens to the engine */
function record(almanac: Almanac, ruleResult: RuleResult): void {
  const a = almanac as unknown as AlmanacInternals;
  a.addResult(ruleResult);
  a.addEvent(ruleResult.event, ruleResult.result ? "success" : "failure");
}

/** runs `engine` on plain-valued facts, through the fast path when it is on */
export function runEngine(engine: Engine, facts: Record<string, unknown>, options: { allowUndefinedFacts: boolean; pathResolver: (value: object, path: string) => unknown }): Promise<EngineResult> {
  if (!FAST_PATH) return engine.run(facts);
  return engine.run({}, { almanac: new FactAlmanac(facts, options) });
}
