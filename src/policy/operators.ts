import ipaddr from "ipaddr.js";
import picomatch from "picomatch";
import semver from "semver";

/**
 * Every operator a policy may use. Each one validates (and precompiles) its value at load
 * time, because json-rules-engine would only fail, or silently return false, at run time.
 */
export interface OperatorSpec {
  name: string;
  /** true for json-rules-engine built-ins we do not re-register */
  builtin: boolean;
  /** fact used when a condition leaves `fact` out (hasAgent -> agents) */
  defaultFact?: string;
  /** facts this operator may be applied to; undefined = any */
  onlyFacts?: string[];
  /** error message for a bad value, undefined when fine; also warms the compile caches */
  check(value: unknown): string | undefined;
  evaluate?(factValue: unknown, value: unknown): boolean;
}

const regexCache = new Map<string, RegExp>();
const globCache = new Map<string, (s: string) => boolean>();
const cidrCache = new Map<string, [ipaddr.IPv4 | ipaddr.IPv6, number]>();
const rangeCache = new Map<string, semver.Range>();

function cached<T>(cache: Map<string, T>, key: string, make: (k: string) => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    v = make(key);
    cache.set(key, v);
  }
  return v;
}

const toRegex = (p: string) => cached(regexCache, p, (k) => new RegExp(k));
const toGlob = (p: string) => cached(globCache, p, (k) => picomatch(k, { dot: true }));
const toCidr = (p: string) => cached(cidrCache, p, (k) => ipaddr.parseCIDR(k));
const toRange = (p: string) => cached(rangeCache, p, (k) => new semver.Range(k, { loose: true }));

const versionCache = new Map<string, semver.SemVer | null>();
const VERSION_CACHE_MAX = 10_000;

/**
 * A node's version as the range test sees it, or null. Parsed once per distinct string: a fleet
 * runs a handful of versions, and Range.test would otherwise parse the string again on every
 * call (it accepts the SemVer, built with the range's options, in place of the string).
 */
function toVersion(f: string): semver.SemVer | null {
  let v = versionCache.get(f);
  if (v === undefined) {
    // Choria versions have a 4th build part (0.99.0.20221129), which strict semver rejects
    const s = semver.valid(f, { loose: true }) ?? semver.coerce(f)?.version;
    v = null;
    if (s) {
      try {
        v = new semver.SemVer(s, { loose: true });
      } catch {
        v = null;
      }
    }
    if (versionCache.size >= VERSION_CACHE_MAX) versionCache.clear();
    versionCache.set(f, v);
  }
  return v;
}

/** a value that is one string or a non-empty list of strings */
function stringOrList(value: unknown, what: string, each: (s: string) => string | undefined): string | undefined {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) return `value must be a ${what} or a non-empty list of them`;
  for (const v of list) {
    if (typeof v !== "string") return `value must be a ${what} or a list of them, got ${JSON.stringify(v)}`;
    const err = each(v);
    if (err) return err;
  }
  return undefined;
}

function tryOr(f: () => unknown, msg: (e: Error) => string): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return msg(e as Error);
  }
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/** true when any string fact element satisfies `test` for any pattern */
function anyMatch(factValue: unknown, value: unknown, test: (fact: string, pattern: string) => boolean): boolean {
  const facts = asList(factValue);
  const patterns = asList(value);
  for (const f of facts) {
    if (typeof f !== "string" && typeof f !== "number") continue;
    const s = String(f);
    for (const p of patterns) if (typeof p === "string" && test(s, p)) return true;
  }
  return false;
}

function parseIp(s: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  // ipaddr.parse runs the same isValid checks itself; calling isValid first parsed every address twice
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(s);
  } catch {
    return undefined;
  }
  // IPv4-mapped IPv6 addresses should match IPv4 ranges
  return a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

function isNumber(v: unknown): boolean {
  return typeof v === "number" && Number.isFinite(v);
}

const scalar = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);

const builtins: OperatorSpec[] = [
  { name: "equal", builtin: true, check: (v) => (scalar(v) ? undefined : "value must be a string, number, boolean or null") },
  { name: "notEqual", builtin: true, check: (v) => (scalar(v) ? undefined : "value must be a string, number, boolean or null") },
  { name: "in", builtin: true, check: (v) => (Array.isArray(v) && v.every(scalar) ? undefined : "value must be a list of plain values") },
  { name: "notIn", builtin: true, check: (v) => (Array.isArray(v) && v.every(scalar) ? undefined : "value must be a list of plain values") },
  { name: "contains", builtin: true, check: (v) => (scalar(v) ? undefined : "value must be a plain value (the fact must be a list)") },
  { name: "doesNotContain", builtin: true, check: (v) => (scalar(v) ? undefined : "value must be a plain value (the fact must be a list)") },
  ...["lessThan", "lessThanInclusive", "greaterThan", "greaterThanInclusive"].map(
    (name): OperatorSpec => ({ name, builtin: true, check: (v) => (isNumber(v) ? undefined : "value must be a number") }),
  ),
];

const custom: OperatorSpec[] = [
  {
    name: "matches",
    builtin: false,
    check: (v) => stringOrList(v, "regular expression", (p) => tryOr(() => toRegex(p), (e) => `bad regular expression ${JSON.stringify(p)}: ${e.message}`)),
    evaluate: (f, v) => anyMatch(f, v, (s, p) => toRegex(p).test(s)),
  },
  {
    name: "glob",
    builtin: false,
    check: (v) => stringOrList(v, "glob pattern", (p) => tryOr(() => toGlob(p), (e) => `bad glob ${JSON.stringify(p)}: ${e.message}`)),
    evaluate: (f, v) => anyMatch(f, v, (s, p) => toGlob(p)(s)),
  },
  {
    name: "inCidr",
    builtin: false,
    check: (v) => stringOrList(v, "CIDR network", (p) => tryOr(() => toCidr(p), () => `bad CIDR ${JSON.stringify(p)} (expected e.g. 10.0.0.0/8 or 2001:db8::/32)`)),
    evaluate: (f, v) =>
      anyMatch(f, v, (s, p) => {
        const ip = parseIp(s);
        if (!ip) return false;
        const range = toCidr(p);
        return ip.kind() === range[0].kind() && ip.match(range);
      }),
  },
  {
    name: "semver",
    builtin: false,
    check: (v) =>
      typeof v === "string" && tryOr(() => toRange(v), () => "bad") === undefined
        ? undefined
        : `value must be a semver range such as ">= 0.28.0" or "^1.2", got ${JSON.stringify(v)}`,
    evaluate: (f, v) => {
      if (typeof f !== "string" || typeof v !== "string") return false;
      const version = toVersion(f);
      return version !== null && toRange(v).test(version);
    },
  },
  {
    name: "hasAgent",
    builtin: false,
    defaultFact: "agents",
    onlyFacts: ["agents"],
    check: (v) => stringOrList(v, "agent name", () => undefined),
    evaluate: (f, v) => Array.isArray(f) && asList(v).every((x) => f.includes(x)),
  },
  {
    name: "hasClass",
    builtin: false,
    defaultFact: "classes",
    onlyFacts: ["classes"],
    check: (v) => stringOrList(v, "class name", () => undefined),
    evaluate: (f, v) => Array.isArray(f) && asList(v).every((x) => f.includes(x)),
  },
  {
    name: "exists",
    builtin: false,
    check: (v) => (typeof v === "boolean" ? undefined : "value must be true or false"),
    evaluate: (f, v) => (f !== undefined && f !== null) === v,
  },
];

export const OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map([...builtins, ...custom].map((o) => [o.name, o]));

export const CUSTOM_OPERATORS: readonly OperatorSpec[] = custom;
