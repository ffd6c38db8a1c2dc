/**
 * Decodes an RPC `data` object the way Go's encoding/json fills an action's input struct:
 * unknown keys ignored, keys matched case-insensitively (exact match first), null leaves a
 * field at its zero value, and a wrong JSON type fails with Go's error text, which the
 * server puts into the InvalidData statusmsg.
 */
export type GoType = "string" | "int" | "map[string]string";

export interface GoStruct {
  /** Go type name as it appears in errors, e.g. "RestartRequest" */
  name: string;
  /** package-qualified name for whole-value errors, e.g. "provision.RestartRequest" */
  qualified: string;
  fields: Record<string, GoType>;
}

export class GoJsonError extends Error {}

function jsonKind(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "array";
  return "object";
}

function fieldError(s: GoStruct, field: string, type: GoType, v: unknown): GoJsonError {
  // Go names the literal only when a number fails to fit a numeric field
  const kind = typeof v === "number" && type === "int" ? `number ${String(v)}` : jsonKind(v);
  return new GoJsonError(`json: cannot unmarshal ${kind} into Go struct field ${s.name}.${field} of type ${type}`);
}

/** Returns the decoded fields (zero values filled in) or throws GoJsonError with Go's message. */
export function decodeGoStruct(s: GoStruct, data: unknown): Record<string, string | number | Record<string, string>> {
  const out: Record<string, string | number | Record<string, string>> = {};
  for (const [f, t] of Object.entries(s.fields)) out[f] = t === "string" ? "" : t === "int" ? 0 : {};
  if (data === null || data === undefined) return out;
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new GoJsonError(`json: cannot unmarshal ${jsonKind(data)} into Go value of type ${s.qualified}`);
  }
  const src = data as Record<string, unknown>;
  const names = Object.keys(s.fields);
  let first: GoJsonError | undefined;
  for (const key of Object.keys(src)) {
    const field = names.find((n) => n === key) ?? names.find((n) => n.toLowerCase() === key.toLowerCase());
    if (!field) continue;
    const v = src[key];
    if (v === null) continue;
    const t = s.fields[field];
    if (t === "string") {
      if (typeof v === "string") out[field] = v;
      else first ??= fieldError(s, field, t, v);
    } else if (t === "int") {
      if (typeof v === "number" && Number.isInteger(v)) out[field] = v;
      else first ??= fieldError(s, field, t, v);
    } else {
      if (typeof v !== "object" || Array.isArray(v)) {
        first ??= fieldError(s, field, t, v);
        continue;
      }
      const m: Record<string, string> = {};
      for (const [k, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv === "string") m[k] = mv;
        else if (mv !== null) first ??= new GoJsonError(`json: cannot unmarshal ${jsonKind(mv)} into Go struct field ${s.name}.${field} of type string`);
      }
      out[field] = m;
    }
  }
  // Go keeps decoding after a type error and reports the first one
  if (first) throw first;
  return out;
}

/** Go's json syntax error text for the common cases, used in "could not parse incoming message" replies. */
export function goSyntaxError(text: string): string {
  const t = text.trimStart();
  if (t === "") return "unexpected end of JSON input";
  try {
    JSON.parse(text);
  } catch {
    const c = t[0];
    if (!"{[\"-0123456789tfn".includes(c)) return `invalid character '${c}' looking for beginning of value`;
  }
  return "unexpected end of JSON input";
}
