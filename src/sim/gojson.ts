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

/** Go's quoteChar: how encoding/json's scanner names a byte in its errors */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c);
  return `'${q.slice(1, -1)}'`;
}

const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";
const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

/**
 * The error text of Go's encoding/json for text that is not valid JSON, as its scanner
 * (checkValid, which Unmarshal runs first) words it; undefined when the text is valid JSON.
 */
export function goSyntaxErrorOf(text: string): string | undefined {
  let i = 0;
  const n = text.length;
  // at the end of input Go's scanner feeds one space, so an unfinished literal, number or escape
  // is an invalid ' ' rather than an unexpected end
  const bad = (ctx: string): never => {
    throw new GoJsonError(`invalid character ${quoteChar(i < n ? text[i] : " ")} ${ctx}`);
  };
  const eof = (): never => {
    throw new GoJsonError("unexpected end of JSON input");
  };
  const ws = (): void => {
    while (i < n && isSpace(text[i])) i++;
  };
  const literal = (word: string): void => {
    for (let k = 1; k < word.length; k++) {
      i++;
      if (i >= n || text[i] !== word[k]) bad(`in literal ${word} (expecting ${quoteChar(word[k])})`);
    }
    i++;
  };
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= n) eof();
      const c = text[i];
      if (c === '"') return void i++;
      if (c === "\\") {
        i++;
        const e = i < n ? text[i] : " ";
        if (e === "u") {
          for (let k = 0; k < 4; k++) {
            i++;
            if (i >= n || !isHex(text[i])) bad("in \\u hexadecimal character escape");
          }
        } else if (!'"\\/bfnrt'.includes(e)) bad("in string escape code");
        i++;
        continue;
      }
      if (c < " ") bad("in string literal");
      i++;
    }
  };
  const num = (): void => {
    if (text[i] === "-") {
      i++;
      if (i >= n || !isDigit(text[i])) bad("in numeric literal");
    }
    if (text[i] === "0") i++;
    else while (i < n && isDigit(text[i])) i++;
    if (i < n && text[i] === ".") {
      i++;
      if (i >= n || !isDigit(text[i])) bad("after decimal point in numeric literal");
      while (i < n && isDigit(text[i])) i++;
    }
    if (i < n && (text[i] === "e" || text[i] === "E")) {
      i++;
      if (i < n && (text[i] === "+" || text[i] === "-")) i++;
      if (i >= n || !isDigit(text[i])) bad("in exponent of numeric literal");
      while (i < n && isDigit(text[i])) i++;
    }
  };
  /** the next byte that is not white space; the end of input is unexpected here */
  const peek = (): string => {
    ws();
    if (i >= n) eof();
    return text[i];
  };
  /** after an object member or array element: true at a comma, false at the closing byte */
  const more = (close: string, ctx: string): boolean => {
    const c = peek();
    if (c !== "," && c !== close) bad(ctx);
    i++;
    return c === ",";
  };
  const value = (): void => {
    const c = peek();
    if (c === "{") {
      i++;
      if (peek() === "}") return void i++;
      do {
        if (peek() !== '"') bad("looking for beginning of object key string");
        str();
        if (peek() !== ":") bad("after object key");
        i++;
        value();
      } while (more("}", "after object key:value pair"));
      return;
    }
    if (c === "[") {
      i++;
      if (peek() === "]") return void i++;
      do value();
      while (more("]", "after array element"));
      return;
    }
    if (c === '"') return str();
    if (c === "-" || isDigit(c)) return num();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    bad("looking for beginning of value");
  };
  try {
    value();
    ws();
    if (i < n) bad("after top-level value");
    return undefined;
  } catch (e) {
    if (e instanceof GoJsonError) return e.message;
    throw e;
  }
}

/** goSyntaxErrorOf for text already known not to be JSON */
export function goSyntaxError(text: string): string {
  return goSyntaxErrorOf(text) ?? "unexpected end of JSON input";
}
