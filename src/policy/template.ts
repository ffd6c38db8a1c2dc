import { checkPath, compileFullGetter, TEMPLATE_ONLY_ROOTS, type Getter } from "./paths.js";

/**
 * `{{ identity }}`, `{{ facts.country | upper }}`, `{{ facts.dc | default "dc1" }}`.
 * Paths are checked when the policy loads; a value missing at evaluation time is an error
 * (the node is deferred), unless a `default` filter supplies one.
 */
export class TemplateError extends Error {}

export type Render = (ctx: unknown) => string;

export interface CompiledTemplate {
  render: Render;
  /** true when the text has no placeholders, so render returns it unchanged */
  constant: boolean;
  paths: string[];
}

type Filter = (v: unknown, path: string) => unknown;

const PLACEHOLDER = /\{\{(.*?)\}\}/g;

export function compileTemplate(text: string, vars: Record<string, string> | undefined): { template?: CompiledTemplate; errors: string[] } {
  const errors: string[] = [];
  const parts: Array<string | Render> = [];
  const paths: string[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    parts.push(text.slice(last, m.index));
    last = m.index! + m[0].length;
    const r = compileExpression(m[1]!, vars, errors);
    if (r) {
      parts.push(r.render);
      paths.push(r.path);
    }
  }
  parts.push(text.slice(last));
  if (/\{\{|\}\}/.test(parts.filter((p) => typeof p === "string").join(""))) errors.push(`unbalanced "{{ }}" in ${JSON.stringify(text)}`);
  if (errors.length) return { errors };
  const pieces = parts.filter((p) => p !== "");
  if (pieces.every((p) => typeof p === "string")) {
    return { template: { render: () => text, constant: true, paths }, errors };
  }
  return {
    template: {
      constant: false,
      paths,
      render: (ctx) => {
        let out = "";
        for (const p of pieces) out += typeof p === "string" ? p : p(ctx);
        return out;
      },
    },
    errors,
  };
}

function compileExpression(expr: string, vars: Record<string, string> | undefined, errors: string[]): { render: Render; path: string } | undefined {
  const [head, ...filterTexts] = splitFilters(expr);
  const path = (head ?? "").trim();
  const pathErr = checkPath(path, TEMPLATE_ONLY_ROOTS);
  if (pathErr) {
    errors.push(`template {{${expr}}}: ${pathErr}`);
    return undefined;
  }
  if (vars && path.startsWith("vars.") && !Object.prototype.hasOwnProperty.call(vars, path.slice(5))) {
    errors.push(`template {{${expr}}}: undefined variable "${path.slice(5)}" (declare it under vars:)`);
    return undefined;
  }
  if (path === "vars") {
    errors.push(`template {{${expr}}}: name a variable, e.g. vars.ssldir`);
    return undefined;
  }
  const filters: Filter[] = [];
  for (const ft of filterTexts) {
    const f = compileFilter(ft.trim());
    if (typeof f === "string") errors.push(`template {{${expr}}}: ${f}`);
    else filters.push(f);
  }
  const get: Getter = compileFullGetter(path);
  return {
    path,
    render: (ctx) => {
      let v = get(ctx);
      for (const f of filters) v = f(v, path);
      return stringify(v, path);
    },
  };
}

/** splits on `|` outside of double quotes */
function splitFilters(expr: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (const ch of expr) {
    if (ch === '"') quoted = !quoted;
    if (ch === "|" && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function compileFilter(text: string): Filter | string {
  if (text === "lower") return (v, p) => stringify(v, p).toLowerCase();
  if (text === "upper") return (v, p) => stringify(v, p).toUpperCase();
  const d = /^default\s+"((?:[^"\\]|\\.)*)"$/.exec(text);
  if (d) {
    const fallback = d[1]!.replace(/\\(.)/g, "$1");
    return (v) => (v === undefined || v === null || v === "" ? fallback : v);
  }
  if (text.startsWith("default")) return `default needs a quoted value: default "x"`;
  return `unknown filter "${text}" (known: lower, upper, default "x")`;
}

function stringify(v: unknown, path: string): string {
  if (v === undefined || v === null) throw new TemplateError(`template value ${path} is not set for this node`);
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.every((x) => ["string", "number", "boolean"].includes(typeof x))) return v.join(",");
  throw new TemplateError(`template value ${path} is ${Array.isArray(v) ? "a list of structures" : "a structure"}, not a plain value`);
}
