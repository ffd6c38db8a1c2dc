import type { PolicyProblem } from "./errors.js";
import { OPERATORS } from "./operators.js";
import { checkPath, splitPath } from "./paths.js";
import type { SourceFile } from "./positions.js";
import { compileTemplate, type CompiledTemplate } from "./template.js";
import {
  DEFAULT_PRIORITY,
  RESERVED_KEYS,
  SERVER_PERMISSIONS,
  type CompiledCondition,
  type CompiledRule,
  type CompiledServerClaims,
  type CompiledThen,
  type ConditionDoc,
  type RuleDoc,
  type ServerClaimsDoc,
  type ThenDoc,
} from "./model.js";

type Path = Array<string | number>;

export interface CompileContext {
  src: SourceFile;
  /** undefined when compiling a rule set no policy includes: variable names cannot be checked */
  vars?: Record<string, string>;
  /** undefined when compiling a rule set no policy includes: broker set names cannot be checked */
  brokerSets?: Record<string, string[]>;
  ruleSet: string;
  problems: PolicyProblem[];
  roots: Set<string>;
}

/**
 * Turns one rule into its compiled form, reporting every problem json-rules-engine would
 * otherwise accept and only trip over at run time (unknown operator, bad regex, ...).
 */
export function compileRule(ctx: CompileContext, path: Path, rule: RuleDoc, index: number): CompiledRule | undefined {
  const before = ctx.problems.length;
  const report = (p: Path, msg: string, key = false) => ctx.problems.push(ctx.src.problem(p, msg, rule.name, { key }));
  let condition = compileCondition(ctx, [...path, "conditions"], rule.conditions, report);
  // json-rules-engine wants a boolean group at the top; a lone test is the obvious shorthand
  if (condition && condition.kind === "test") condition = { kind: "all", children: [condition] };
  const then = compileThen(ctx, [...path, "then"], rule.then, report);
  if (then.outcome === "upgrade" && !then.upgrade) report([...path, "then"], 'outcome "upgrade" needs then.upgrade.version');
  if (rule.then.upgrade && then.outcome !== "upgrade") report([...path, "then", "upgrade"], 'then.upgrade is only used with outcome "upgrade"', true);
  if (rule.then.retryAfter !== undefined && then.outcome !== "defer") report([...path, "then", "retryAfter"], 'then.retryAfter is only used with outcome "defer"', true);
  if ((then.outcome === "defer" || then.outcome === "shutdown") && (then.brokerSet || then.configuration.length || then.serverClaims)) {
    report([...path, "then", "outcome"], `outcome "${then.outcome}" never configures the node; its brokerSet/configuration/serverClaims would be ignored`);
  }
  if (then.approval && then.outcome !== undefined && then.outcome !== "configure") {
    report([...path, "then", "approval"], `approval is asked for a node the rule would configure; outcome "${then.outcome}" never configures it`, true);
  }
  if (ctx.problems.length !== before || !condition) return undefined;
  const { line, col } = ctx.src.pos(path);
  return {
    index,
    name: rule.name,
    priority: rule.priority ?? DEFAULT_PRIORITY,
    stop: rule.stop === true,
    ruleSet: ctx.ruleSet,
    source: `${ctx.src.file}:${line}:${col}`,
    condition,
    then,
  };
}

function compileCondition(ctx: CompileContext, path: Path, c: ConditionDoc | undefined, report: (p: Path, msg: string, key?: boolean) => void): CompiledCondition | undefined {
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    report(path, "condition must be a map: {all: [...]}, {any: [...]}, {not: {...}} or {fact, operator, value}");
    return undefined;
  }
  const groups = (["all", "any", "not"] as const).filter((k) => c[k] !== undefined);
  const isTest = c.operator !== undefined || c.fact !== undefined || "value" in c;
  if (groups.length + (isTest ? 1 : 0) !== 1) {
    report(path, groups.length + (isTest ? 1 : 0) === 0 ? "empty condition: use all, any, not or {fact, operator, value}" : `a condition is exactly one of all, any, not or a test; this one mixes ${[...groups, ...(isTest ? ["fact/operator/value"] : [])].join(", ")}`);
    return undefined;
  }
  if (c.all || c.any) {
    const kind = c.all ? "all" : "any";
    const list = (c.all ?? c.any)!;
    const children = list.map((child, i) => compileCondition(ctx, [...path, kind, i], child, report));
    return children.every((x): x is CompiledCondition => x !== undefined) ? { kind, children } : undefined;
  }
  if (c.not) {
    const child = compileCondition(ctx, [...path, "not"], c.not, report);
    return child ? { kind: "not", child } : undefined;
  }
  return compileTest(ctx, path, c, report);
}

function compileTest(ctx: CompileContext, path: Path, c: ConditionDoc, report: (p: Path, msg: string, key?: boolean) => void): CompiledCondition | undefined {
  let ok = true;
  if (c.operator === undefined) {
    report(path, "missing operator");
    return undefined;
  }
  const op = OPERATORS.get(c.operator);
  if (!op) {
    report([...path, "operator"], `unknown operator "${c.operator}" (known: ${[...OPERATORS.keys()].join(", ")})`);
    ok = false;
  }
  const fact = c.fact ?? op?.defaultFact;
  if (fact === undefined) {
    report(path, `missing fact (the dotted path to test, e.g. facts.country)`);
    ok = false;
  } else {
    const err = checkPath(fact);
    if (err) {
      report([...path, "fact"], err);
      ok = false;
    } else {
      ctx.roots.add(splitPath(fact).root);
      if (op?.onlyFacts && !op.onlyFacts.includes(fact)) {
        report([...path, "fact"], `operator ${op.name} tests ${op.onlyFacts.join("/")}, not ${fact} (leave fact out)`);
        ok = false;
      }
    }
  }
  if (!("value" in c)) {
    report(path, "missing value");
    ok = false;
  } else if (typeof c.value === "object" && c.value !== null && !Array.isArray(c.value)) {
    // json-rules-engine would read {fact: ...} as a reference to another fact and resolve it at run time
    report([...path, "value"], "value must be a plain value or a list, not a map");
    ok = false;
  } else if (op) {
    const err = op.check(c.value);
    if (err) {
      report([...path, "value"], `${op.name}: ${err}`);
      ok = false;
    }
  }
  return ok ? { kind: "test", fact: fact!, operator: c.operator, value: c.value } : undefined;
}

/** compiles a rule's `then` or the policy's `defaults` */
export function compileThen(ctx: CompileContext, path: Path, t: ThenDoc | undefined, report: (p: Path, msg: string, key?: boolean) => void): CompiledThen {
  const out: CompiledThen = { configuration: [], sans: [], actionPolicies: [], opaPolicies: [] };
  if (!t) return out;
  const tmpl = (p: Path, text: string): CompiledTemplate | undefined => {
    const r = compileTemplate(text, ctx.vars);
    for (const e of r.errors) report(p, e);
    return r.template;
  };
  if (t.outcome) out.outcome = t.outcome;
  if (t.reason !== undefined) out.reason = tmpl([...path, "reason"], t.reason);
  if (t.brokerSet !== undefined) {
    if (ctx.brokerSets && !Object.prototype.hasOwnProperty.call(ctx.brokerSets, t.brokerSet)) {
      const known = Object.keys(ctx.brokerSets);
      report([...path, "brokerSet"], `undefined broker set "${t.brokerSet}" (${known.length ? "defined: " + known.join(", ") : "the policy defines no brokerSets"})`);
    }
    out.brokerSet = t.brokerSet;
  }
  for (const [k, v] of Object.entries(t.configuration ?? {})) {
    if (Object.prototype.hasOwnProperty.call(RESERVED_KEYS, k)) {
      report([...path, "configuration", k], `configuration key "${k}" is set by the provisioner (${RESERVED_KEYS[k]}); remove it`, true);
      continue;
    }
    const c = tmpl([...path, "configuration", k], v);
    if (c) out.configuration.push([k, c]);
  }
  if (t.certificate?.validityDays !== undefined) out.validityDays = t.certificate.validityDays;
  (t.certificate?.sans ?? []).forEach((s, i) => {
    const c = tmpl([...path, "certificate", "sans", i], s);
    if (c) out.sans.push(c);
  });
  if (t.upgrade) out.upgrade = t.upgrade;
  if (t.approval !== undefined) out.approval = typeof t.approval === "string" ? {} : { reason: tmpl([...path, "approval", "reason"], t.approval.reason) };
  if (t.retryAfter !== undefined) out.retryAfter = t.retryAfter;
  out.actionPolicies = Object.entries(t.actionPolicies ?? {});
  out.opaPolicies = Object.entries(t.opaPolicies ?? {});
  if (t.serverClaims) {
    const sc = compileServerClaims(t.serverClaims, [...path, "serverClaims"], tmpl);
    if (sc) out.serverClaims = sc;
  }
  return out;
}

/** undefined when the map sets nothing (`serverClaims: {}`), so such a layer costs the merge nothing */
function compileServerClaims(d: ServerClaimsDoc, path: Path, tmpl: (p: Path, text: string) => CompiledTemplate | undefined): CompiledServerClaims | undefined {
  const out: CompiledServerClaims = { permissions: [] };
  let any = false;
  const list = (key: "collectives" | "pub_subjects") => {
    const l = d[key];
    if (l === undefined) return;
    const compiled: CompiledTemplate[] = [];
    l.forEach((s, i) => {
      const c = tmpl([...path, key, i], s);
      if (c) compiled.push(c);
    });
    out[key] = compiled;
    any = true;
  };
  if (d.ou !== undefined) {
    const c = tmpl([...path, "ou"], d.ou);
    if (c) out.ou = c;
    any = true;
  }
  if (d.exp !== undefined) {
    out.exp = d.exp;
    any = true;
  }
  list("collectives");
  list("pub_subjects");
  for (const k of SERVER_PERMISSIONS) {
    const v = d.permissions?.[k];
    if (v !== undefined) out.permissions.push([k, v]);
  }
  if (d.permissions !== undefined && out.permissions.length) any = true;
  return any ? out : undefined;
}
