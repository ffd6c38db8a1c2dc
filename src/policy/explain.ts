import { fitJson, previewJson, type ConditionExplanation, type Decision, type FiredRule } from "../types/index.js";
import type { CompiledCondition, CompiledRule } from "./model.js";

/** One condition as evaluated, mirroring the rule's condition tree. */
export type ConditionTrace =
  | { kind: "all" | "any"; result?: boolean; children: ConditionTrace[] }
  | { kind: "not"; result?: boolean; child: ConditionTrace }
  | { kind: "test"; fact: string; operator: string; expected: unknown; actual: unknown; result?: boolean };

export interface RuleTrace {
  name: string;
  ruleSet: string;
  priority: number;
  source: string;
  matched: boolean;
  /** matched and its effects were merged into the decision */
  applied: boolean;
  note?: string;
  conditions: ConditionTrace;
}

export interface Explanation {
  decision: Decision;
  rules: RuleTrace[];
  /** configuration key -> where its value came from: "rule x (file:line:col)", "policy defaults (file:line:col)", ... */
  origins?: Record<string, string>;
}

/** the condition part of a json-rules-engine RuleResult, loosely typed: its shape mirrors ours */
interface EngineCondition {
  all?: EngineCondition[];
  any?: EngineCondition[];
  not?: EngineCondition;
  factResult?: unknown;
  result?: boolean;
}

/** walks our compiled tree and the engine's result tree side by side */
export function traceCondition(c: CompiledCondition, r: EngineCondition | undefined, rootResult?: boolean): ConditionTrace {
  switch (c.kind) {
    case "all":
    case "any": {
      const list = (c.kind === "all" ? r?.all : r?.any) ?? [];
      const t: ConditionTrace = { kind: c.kind, children: c.children.map((child, i) => traceCondition(child, list[i])) };
      const res = rootResult ?? r?.result;
      if (res !== undefined) t.result = res;
      return t;
    }
    case "not": {
      const t: ConditionTrace = { kind: "not", child: traceCondition(c.child, r?.not) };
      const res = rootResult ?? r?.result;
      if (res !== undefined) t.result = res;
      return t;
    }
    case "test": {
      const t: ConditionTrace = { kind: "test", fact: c.fact, operator: c.operator, expected: c.value, actual: r?.factResult };
      if (r?.result !== undefined) t.result = r.result;
      return t;
    }
  }
}

/** the leaf tests, for FiredRule.conditions */
export function flattenTests(t: ConditionTrace): ConditionExplanation[] {
  switch (t.kind) {
    case "all":
    case "any":
      return t.children.flatMap(flattenTests);
    case "not":
      return flattenTests(t.child);
    case "test":
      // the fact's value is the node's: it may be too deep or too large to print as JSON
      return [{ fact: t.fact, operator: t.operator, expected: t.expected, actual: fitJson(t.actual), result: t.result === true }];
  }
}

/**
 * A one-line "why" for a matched rule: the tests that made it match. In an `any`, only the
 * branches that matched are named; under `not`, the tests that failed are the reason.
 */
export function why(t: ConditionTrace, negated = false): string {
  switch (t.kind) {
    case "all":
    case "any": {
      const wanted = !negated;
      const kids = t.kind === "all" ? t.children : t.children.filter((k) => k.result === wanted);
      const parts = kids.map((k) => why(k, negated));
      const joiner = (t.kind === "all") !== negated ? " and " : " or ";
      return parts.length > 1 ? parts.map((p) => (p.includes(" and ") || p.includes(" or ") ? `(${p})` : p)).join(joiner) : (parts[0] ?? "");
    }
    case "not":
      return `not (${why(t.child, false)})`;
    case "test":
      return `${t.fact} ${t.operator} ${show(t.expected)} (saw ${show(t.actual)})`;
  }
}

export function toFiredRule(rule: CompiledRule, trace: ConditionTrace, withConditions: boolean): FiredRule {
  const f: FiredRule = { name: rule.name, priority: rule.priority, ruleSet: rule.ruleSet, source: rule.source, why: why(trace) };
  if (withConditions) f.conditions = flattenTests(trace);
  return f;
}

/** a fact's value in a "why": from the node, so possibly too deep to stringify or megabytes long */
export function show(v: unknown): string {
  return v === undefined ? "<unset>" : previewJson(v, 80);
}

/** human-readable explanation, as `policy eval --explain` prints it */
export function renderExplanation(e: Explanation): string {
  const lines: string[] = [];
  for (const r of e.rules) {
    const status = r.applied ? "APPLIED" : r.matched ? "MATCHED, NOT APPLIED" : "no match";
    lines.push(ruleHeading(r, status, r.note));
    renderCondition(r.conditions, "    ", lines);
  }
  const origins = Object.entries(e.origins ?? {});
  if (origins.length) {
    lines.push("", "configuration values from:");
    const w = Math.max(...origins.map(([k]) => k.length));
    for (const [k, from] of origins) lines.push(`  ${k.padEnd(w)}  ${from}`);
  }
  return lines.join("\n");
}

/** one rule's heading line, as `policy eval --explain` and `nodes show` print it */
function ruleHeading(r: { name: string; ruleSet: string; priority?: number; source?: string }, status: string, note?: string): string {
  const where = [r.priority !== undefined ? `priority ${r.priority}` : "", r.ruleSet ? `rule set ${r.ruleSet}` : ""].filter(Boolean).join(", ");
  return `rule ${r.name}${where ? ` [${where}]` : ""}${r.source ? ` ${r.source}` : ""}: ${status}${note ? ` (${note})` : ""}`;
}

/**
 * The rules a decision record says fired (the daemon keeps no condition traces per node): the
 * explanation's heading for each, and the one-line why under it.
 */
export function renderFired(fired: Array<{ name: string; ruleSet: string; why: string; priority?: number; source?: string }>): string {
  if (fired.length === 0) return "no rule fired (the policy defaults decided)";
  return fired.flatMap((f) => [ruleHeading(f, "APPLIED"), `    ${f.why}`]).join("\n");
}

function mark(result: boolean | undefined): string {
  return result === undefined ? "[ - ]" : result ? "[ ok]" : "[   ]";
}

function renderCondition(t: ConditionTrace, indent: string, lines: string[]): void {
  switch (t.kind) {
    case "all":
    case "any":
      lines.push(`${indent}${mark(t.result)} ${t.kind}:`);
      for (const c of t.children) renderCondition(c, indent + "    ", lines);
      return;
    case "not":
      lines.push(`${indent}${mark(t.result)} not:`);
      renderCondition(t.child, indent + "    ", lines);
      return;
    case "test":
      lines.push(`${indent}${mark(t.result)} ${t.fact} ${t.operator} ${show(t.expected)}  saw ${show(t.actual)}`);
  }
}
