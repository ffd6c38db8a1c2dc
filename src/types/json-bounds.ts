/**
 * How deep and how large a parsed JSON value is, measured without recursion and stopping at
 * the first limit passed. Facts, claims and message fields come from the network: JSON.parse
 * reads a value nested 20,000 deep, but JSON.stringify (and structuredClone) overflow the stack
 * at about 5,000 levels, so whatever writes such a value must measure it first. Defined once here
 * for the recorder (provision/), explanations (policy/) and the codecs' messages (protocol/).
 */
export interface JsonLimits {
  /** objects and arrays nested in each other: `{}` is 1, `{"a":{}}` is 2 */
  maxDepth: number;
  /** about the length of the JSON text (UTF-16 units), with `indent` spaces per level */
  maxBytes: number;
}

export type JsonMeasure = { ok: true; depth: number; bytes: number } | { ok: false; problem: "too_deep" | "too_large"; message: string };

function scalarBytes(v: unknown): number {
  switch (typeof v) {
    case "string":
      return v.length + 2;
    case "number":
      return Number.isFinite(v) ? String(v).length : 4;
    case "boolean":
      return v ? 4 : 5;
    default:
      return 4; // null, and what JSON.stringify writes as null in a list
  }
}

/** a member JSON.stringify leaves out of an object */
const omitted = (v: unknown): boolean => v === undefined || typeof v === "function" || typeof v === "symbol";

/**
 * Measures `v` as JSON.stringify(v, null, indent) writes it: the depth, and the length exactly for
 * plain JSON data whose strings need no escapes (escapes make the text a little longer). Stops at
 * the first limit passed, so a hostile value costs at most the limits' worth of work.
 */
export function measureJson(v: unknown, limits: JsonLimits, indent = 0): JsonMeasure {
  const { maxDepth, maxBytes } = limits;
  const nl = indent > 0 ? 1 : 0;
  const stack: Array<{ v: unknown; depth: number }> = [{ v, depth: 0 }];
  let bytes = 0;
  let deepest = 0;
  while (stack.length > 0) {
    const { v: x, depth } = stack.pop()!;
    if (x === null || typeof x !== "object") bytes += scalarBytes(x);
    else {
      const d = depth + 1;
      if (d > maxDepth) return { ok: false, problem: "too_deep", message: `nested more than ${maxDepth} levels deep` };
      if (d > deepest) deepest = d;
      let n = 0;
      if (Array.isArray(x)) {
        n = x.length;
        for (let i = n - 1; i >= 0; i--) stack.push({ v: x[i], depth: d });
      } else {
        for (const k in x) {
          const m = (x as Record<string, unknown>)[k];
          if (!Object.prototype.hasOwnProperty.call(x, k) || omitted(m)) continue;
          n++;
          // "key": (the space only when indented)
          bytes += k.length + 3 + nl;
          stack.push({ v: m, depth: d });
        }
      }
      // brackets; n-1 commas; each member on its own indented line and the closing bracket on one
      bytes += 2 + (n > 0 ? n - 1 + n * (nl + indent * d) + nl + indent * depth : 0);
    }
    if (bytes > maxBytes) return { ok: false, problem: "too_large", message: `more than ${maxBytes} bytes as JSON` };
  }
  return { ok: true, depth: deepest, bytes };
}

/** limits under which JSON.stringify of a short preview is always safe and cheap */
const PREVIEW_LIMITS: JsonLimits = { maxDepth: 64, maxBytes: 64 * 1024 };

/** what stands in for a value past the limits */
function summary(v: unknown, message: string): string {
  return `<${Array.isArray(v) ? "a list" : "an object"} ${message}>`;
}

/** `v` itself when it is safe to write as JSON within `limits`, else a short string saying why not */
export function fitJson(v: unknown, limits: JsonLimits = PREVIEW_LIMITS): unknown {
  const m = measureJson(v, limits);
  return m.ok ? v : summary(v, m.message);
}

/**
 * JSON text of `v` for a message, at most `max` characters: a value from the network may be
 * nested too deep to stringify or be megabytes long, and a message names it, it does not carry it.
 */
export function previewJson(v: unknown, max = 80): string {
  if (v === undefined) return "undefined";
  const m = measureJson(v, PREVIEW_LIMITS);
  if (!m.ok) return summary(v, m.message);
  const s = JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 3) + "..." : s;
}
