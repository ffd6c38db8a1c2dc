/**
 * Choria request filters (§2.5): what they look like on the wire and how a server
 * decides whether it matches. Field order follows Go (fact, cf_class, agent, identity, compound).
 */
export type FactOperator = ">=" | "<=" | "<" | ">" | "!=" | "==" | "=~";
export const FACT_OPERATORS: readonly FactOperator[] = [">=", "<=", "<", ">", "!=", "==", "=~"];

export interface FactFilter {
  fact: string;
  operator: FactOperator;
  value: string;
}

export interface Filter {
  fact: FactFilter[];
  cf_class: string[];
  agent?: string[];
  identity: string[];
  compound: Array<Array<Record<string, unknown>>>;
}

export function emptyFilter(): Filter {
  return { fact: [], cf_class: [], agent: [], identity: [], compound: [] };
}

/** The filter Go's client puts on directed requests and discovery: only the target agent. */
export function agentFilter(agent: string): Filter {
  return { fact: [], cf_class: [], agent: [agent], identity: [], compound: [] };
}

export interface FilterTarget {
  identity: string;
  agents: readonly string[];
  classes: readonly string[];
  facts: Record<string, unknown>;
}

function regexOf(s: string): RegExp | undefined {
  if (s.length >= 2 && s.startsWith("/") && s.endsWith("/")) {
    try {
      return new RegExp(s.slice(1, -1));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function matchesName(pattern: string, candidates: readonly string[]): boolean {
  const re = regexOf(pattern);
  if (re) return candidates.some((c) => re.test(c));
  return candidates.includes(pattern);
}

export function lookupFact(facts: Record<string, unknown>, path: string): unknown {
  if (path in facts) return facts[path];
  let cur: unknown = facts;
  for (const part of path.split(".")) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function factMatches(f: FactFilter, facts: Record<string, unknown>): boolean {
  const actual = lookupFact(facts, f.fact);
  if (actual === undefined || actual === null) return false;
  const a = typeof actual === "object" ? JSON.stringify(actual) : String(actual);
  const an = Number(a);
  const vn = Number(f.value);
  const numeric = a.trim() !== "" && f.value.trim() !== "" && !Number.isNaN(an) && !Number.isNaN(vn);
  switch (f.operator) {
    case "==":
      return numeric ? an === vn : a === f.value;
    case "!=":
      return numeric ? an !== vn : a !== f.value;
    case "=~": {
      const re = regexOf(f.value) ?? safeRegex(f.value);
      return re ? re.test(a) : false;
    }
    case ">=":
      return numeric ? an >= vn : a >= f.value;
    case "<=":
      return numeric ? an <= vn : a <= f.value;
    case ">":
      return numeric ? an > vn : a > f.value;
    case "<":
      return numeric ? an < vn : a < f.value;
  }
}

function safeRegex(s: string): RegExp | undefined {
  try {
    return new RegExp(s);
  } catch {
    return undefined;
  }
}

/**
 * An empty filter matches everything; otherwise every non-empty category must match:
 * facts, classes and agents are ANDed, identities ORed. Compound filters are not used in
 * provisioning; a server that cannot evaluate them would not match, so neither do we.
 */
export function filterMatches(filter: Filter, target: FilterTarget): boolean {
  for (const f of filter.fact) if (!factMatches(f, target.facts)) return false;
  for (const c of filter.cf_class) if (!matchesName(c, target.classes)) return false;
  for (const a of filter.agent ?? []) if (!matchesName(a, target.agents)) return false;
  if (filter.identity.length > 0 && !filter.identity.some((i) => matchesName(i, [target.identity]))) return false;
  if (filter.compound.length > 0) return false;
  return true;
}
