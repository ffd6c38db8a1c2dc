/**
 * Dotted fact paths (`facts.country`, `csr.cn`, `identity`) resolved by precompiled getters.
 * json-rules-engine's default path resolver is JSONPath, which is slow and accepts paths we
 * could never validate; the engine is given `resolvePath` instead.
 */

/** what may follow a root: "any" for free-form maps, a list of known keys, or nothing */
type RootShape = "scalar" | "array" | "any" | readonly string[];

export const FACT_ROOTS: Readonly<Record<string, RootShape>> = {
  identity: "scalar",
  version: "scalar",
  upgradable: "scalar",
  mainCollective: "scalar",
  agents: "array",
  classes: "array",
  collectives: "array",
  dataPlugins: "array",
  machines: "array",
  facts: "any",
  jwt: "any",
  csr: ["cn", "sans", "keyType", "keyBits", "curve", "ssldir"],
};

/** roots that are only valid inside templates */
export const TEMPLATE_ONLY_ROOTS: Readonly<Record<string, RootShape>> = { vars: "any" };

export interface SplitPath {
  root: string;
  /** remaining dotted path after the root, "" when none */
  rest: string;
  segments: string[];
}

export function splitPath(path: string): SplitPath {
  const segments = path.split(".");
  const root = segments[0] ?? "";
  return { root, rest: segments.slice(1).join("."), segments: segments.slice(1) };
}

/** returns an error message, or undefined when `path` can resolve on some inventory */
export function checkPath(path: string, extraRoots: Readonly<Record<string, RootShape>> = {}): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(path)) return `invalid fact path "${path}" (use dotted names like facts.country)`;
  const { root, segments } = splitPath(path);
  const shape = Object.prototype.hasOwnProperty.call(FACT_ROOTS, root) ? FACT_ROOTS[root] : Object.prototype.hasOwnProperty.call(extraRoots, root) ? extraRoots[root] : undefined;
  if (shape === undefined) {
    const known = [...Object.keys(FACT_ROOTS), ...Object.keys(extraRoots)].sort().join(", ");
    return `unknown fact "${root}" in path "${path}" (known: ${known})`;
  }
  if (segments.length === 0) return undefined;
  if (shape === "scalar") return `"${root}" is a single value and has no fields ("${path}")`;
  if (shape === "array") return `"${root}" is a list; test it with contains/hasAgent/hasClass instead of "${path}"`;
  if (Array.isArray(shape)) {
    if (segments.length > 1 || !shape.includes(segments[0]!)) return `unknown field "${segments.join(".")}" of ${root} (known: ${shape.join(", ")})`;
  }
  return undefined;
}

export type Getter = (value: unknown) => unknown;

const getterCache = new Map<string, Getter>();

/** a getter for a dotted path below some object; own properties only, so `__proto__` & co never leak */
export function compileGetter(rest: string): Getter {
  const cached = getterCache.get(rest);
  if (cached) return cached;
  const segs = rest === "" ? [] : rest.split(".");
  let g: Getter;
  if (segs.length === 0) g = (v) => v;
  else if (segs.length === 1) {
    const a = segs[0]!;
    g = (v) => (isObject(v) && Object.prototype.hasOwnProperty.call(v, a) ? v[a] : undefined);
  } else {
    g = (v) => {
      let cur: unknown = v;
      for (let i = 0; i < segs.length; i++) {
        if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, segs[i]!)) return undefined;
        cur = cur[segs[i]!];
      }
      return cur;
    };
  }
  getterCache.set(rest, g);
  return g;
}

/** json-rules-engine `pathResolver`: the engine hands us the root fact value and the rest of the path */
export function resolvePath(value: object, path: string): unknown {
  return compileGetter(path)(value);
}

/** full dotted path against a root object such as `{ ...inventory, vars }` */
export function compileFullGetter(path: string): Getter {
  const { root, rest } = splitPath(path);
  const inner = compileGetter(rest);
  return (v) => (isObject(v) && Object.prototype.hasOwnProperty.call(v, root) ? inner(v[root]) : undefined);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
