/**
 * The configuration schema (schemas/provisioner-config.json) compiled twice: once to check a
 * file as written, so every problem can be placed at its file:line:col, and once with ajv's
 * `useDefaults`, which is where every default comes from. ajv's errors become one sentence per
 * problem: a bad duration is one message, not one per branch of the schema's oneOf.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import AjvModule, { type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { REFERENCE_KEYS } from "./reference-keys.js";

const Ajv = AjvModule as unknown as typeof AjvModule.default;
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export const CONFIG_SCHEMA_PATH = fileURLToPath(new URL("../../schemas/provisioner-config.json", import.meta.url));

/** One problem in a document: the path of the value (or of the unknown key) and a sentence. */
export interface SchemaProblem {
  path: string[];
  /** the problem is the key itself (an unknown key), not its value */
  atKey?: boolean;
  message: string;
}

const validators = new Map<boolean, ValidateFunction>();
function validator(useDefaults: boolean): ValidateFunction {
  let v = validators.get(useDefaults);
  if (!v) {
    const ajv = new Ajv({ allErrors: true, strict: false, verbose: true, useDefaults });
    addFormats(ajv);
    v = ajv.compile(JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")));
    validators.set(useDefaults, v);
  }
  return v;
}

/** Problems of `doc` as written; `doc` is not changed. */
export function schemaProblems(doc: unknown): SchemaProblem[] {
  const v = validator(false);
  return v(doc) ? [] : problemsFrom(v.errors ?? []);
}

/** Fills in the schema's defaults, in place, and returns the problems (none when `doc` is valid). */
export function applySchemaDefaults(doc: object): SchemaProblem[] {
  const v = validator(true);
  return v(doc) ? [] : problemsFrom(v.errors ?? []);
}

function pathOf(e: ErrorObject): string[] {
  return e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

const dotted = (path: string[]) => (path.length ? path.join(".") : "(top level)");

function problemsFrom(errors: ErrorObject[]): SchemaProblem[] {
  // a oneOf's failure explains itself; its branches' errors would only repeat it in pieces
  const oneOfs = errors.filter((e) => e.keyword === "oneOf");
  const insideOneOf = (e: ErrorObject) => oneOfs.some((o) => o !== e && e.instancePath.startsWith(o.instancePath) && e.schemaPath.startsWith(`${o.schemaPath}/`));
  const out: SchemaProblem[] = [];
  for (const e of errors) {
    // an if/then failure is reported by the errors of its `then`
    if (e.keyword === "if" || insideOneOf(e)) continue;
    const path = pathOf(e);
    if (e.keyword === "additionalProperties") {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      out.push({ path: [...path, key], atKey: true, message: `${dotted([...path, key])}: unknown key${hintFor([...path, key], known)}` });
    } else if (e.keyword === "oneOf") {
      out.push({ path, message: `${dotted(path)}: ${oneOfMessage(e, errors)}, got ${JSON.stringify(e.data)}` });
    } else if (e.keyword === "enum") {
      out.push({ path, message: `${dotted(path)}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")}, got ${JSON.stringify(e.data)}` });
    } else {
      out.push({ path, message: `${dotted(path)}: ${e.message}` });
    }
  }
  return out;
}

function oneOfMessage(e: ErrorObject, all: ErrorObject[]): string {
  if (e.schemaPath.startsWith("#/definitions/duration/")) return "must be a duration such as 500ms, 10s, 5m, 1h, 30d, 1y or a number of milliseconds";
  if (e.schemaPath.startsWith("#/definitions/rate/")) return "must be a rate such as 10/m, 100/h, 2/s or a number per minute";
  const types = all.filter((b) => b.keyword === "type" && b.instancePath === e.instancePath && b.schemaPath.startsWith(`${e.schemaPath}/`)).map((b) => (b.params as { type: string }).type);
  return types.length ? `must be ${types.join(" or ")}` : (e.message ?? "is invalid");
}

function hintFor(path: string[], known: string[]): string {
  const ref = REFERENCE_KEYS[path.join(".")];
  if (ref) return ` (a key of the reference provisioner): ${ref} (docs/migration.md)`;
  const key = path[path.length - 1]!;
  const near = known.filter((k) => editDistance(k, key) <= (key.length >= 4 ? 2 : 1));
  return near.length ? `; did you mean ${near.join(" or ")}?` : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
