/**
 * Public API of the policy module: the daemon, `policy eval` and `policy test` all go
 * through loadPolicySet + PolicySet.evaluate, so they cannot disagree.
 */
import type { Decision, Inventory, PolicyRef } from "../types/index.js";
import { PolicyLoadError } from "./errors.js";
import { Evaluator } from "./evaluate.js";
import type { Explanation } from "./explain.js";
import { loadPolicies, type LoadOptions } from "./load.js";
import type { CompiledRule } from "./model.js";

export { PolicyLoadError, formatProblem, type PolicyProblem } from "./errors.js";
export type { LoadOptions } from "./load.js";
export { inventoryFromFile, InventoryFileError } from "./inventory-file.js";
export { renderExplanation, renderFired, type Explanation, type RuleTrace, type ConditionTrace } from "./explain.js";

export interface PolicySet {
  ref: PolicyRef;
  /** the policy file first, then included rule sets in include order */
  files: string[];
  evaluate(inv: Inventory, opts?: { explain?: boolean }): Promise<Decision>;
  /** the decision plus every rule's condition trace, including rules that did not match */
  explain(inv: Inventory): Promise<Explanation>;
  /** compiled rules in declaration order (for coverage and tooling) */
  rules: readonly CompiledRule[];
}

/** loads, validates and compiles; throws PolicyLoadError listing every problem */
export async function loadPolicySet(opts: LoadOptions): Promise<PolicySet> {
  const { policies, problems } = loadPolicies(opts);
  if (problems.length) throw new PolicyLoadError(problems);
  let policy;
  if (opts.policy !== undefined) {
    policy = policies.get(opts.policy);
    if (!policy) throw new PolicyLoadError([{ file: opts.policiesDir, line: 1, col: 1, message: `no policy named "${opts.policy}" (found: ${[...policies.keys()].join(", ") || "none"})` }]);
  } else if (policies.size === 1) {
    policy = [...policies.values()][0]!;
  } else {
    throw new PolicyLoadError([
      { file: opts.policiesDir, line: 1, col: 1, message: policies.size === 0 ? "no Policy document found" : `several policies found (${[...policies.keys()].join(", ")}); choose one by name` },
    ]);
  }
  const evaluator = new Evaluator(policy);
  return {
    ref: { name: policy.name, version: policy.version, hash: policy.hash },
    files: policy.files,
    rules: policy.rules,
    evaluate: (inv, o) => evaluator.evaluate(inv, o),
    explain: (inv) => evaluator.explain(inv),
  };
}

/** every problem in both directories, for `policy check` (which checks all policies, not one) */
export function checkPolicies(opts: Omit<LoadOptions, "policy">): import("./errors.js").PolicyProblem[] {
  return loadPolicies(opts).problems;
}

export interface PolicySummary extends PolicyRef {
  /** rules of the whole set: the policy's own and those of the rule sets it includes */
  rules: number;
  file: string;
}

/** `policy check`: every problem, and what was loaded (name, version, hash, rule count per policy) */
export function checkPolicySets(opts: Omit<LoadOptions, "policy">): { problems: import("./errors.js").PolicyProblem[]; policies: PolicySummary[] } {
  const { policies, problems } = loadPolicies(opts);
  const summaries = [...policies.values()].map((p) => ({ name: p.name, version: p.version, hash: p.hash, rules: p.rules.length, file: p.files[0] ?? "" }));
  return { problems, policies: summaries.sort((a, b) => a.name.localeCompare(b.name)) };
}
