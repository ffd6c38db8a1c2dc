import type { RuleProperties } from "json-rules-engine";
import type { CompiledCondition, CompiledRule } from "./model.js";
import { splitPath } from "./paths.js";

/**
 * Our compiled conditions in json-rules-engine form: dotted paths split into fact + path, and
 * list values replaced by a short token. Every run copies every rule's conditions (RuleResult),
 * and lists were the bulk of that copy; with tokens every leaf value is a primitive, which is
 * also what engine-fast.ts's synchronous path requires. The operators look the list up again
 * (as a Set for in/notIn).
 */
export class ValueTable {
  private readonly lists: unknown[][] = [];
  private readonly sets: Array<Set<unknown>> = [];

  /** a token can never collide with a policy value: YAML strings cannot hold a NUL */
  token(list: unknown[]): string {
    this.lists.push(list);
    this.sets.push(new Set(list));
    return "\u0000" + (this.lists.length - 1);
  }

  /** the original value for a token, anything else unchanged */
  resolve(v: unknown): unknown {
    if (typeof v === "string" && v.charCodeAt(0) === 0) return this.lists[Number(v.slice(1))];
    return v;
  }

  set(v: unknown): Set<unknown> | undefined {
    if (typeof v === "string" && v.charCodeAt(0) === 0) return this.sets[Number(v.slice(1))];
    return undefined;
  }
}

export function engineRules(rules: readonly CompiledRule[], table: ValueTable): RuleProperties[] {
  return rules.map((r) => ({ name: r.name, conditions: toEngine(r.condition, table) as RuleProperties["conditions"], event: { type: "matched" } }));
}

function toEngine(c: CompiledCondition, table: ValueTable): unknown {
  switch (c.kind) {
    case "all":
      return { all: c.children.map((x) => toEngine(x, table)) };
    case "any":
      return { any: c.children.map((x) => toEngine(x, table)) };
    case "not":
      return { not: toEngine(c.child, table) };
    case "test": {
      const { root, rest } = splitPath(c.fact);
      const value = Array.isArray(c.value) ? table.token(c.value) : c.value;
      return rest ? { fact: root, path: rest, operator: c.operator, value } : { fact: root, operator: c.operator, value };
    }
  }
}
