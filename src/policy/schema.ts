import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { PolicyProblem } from "./errors.js";
import { pointerToPath, type SourceFile } from "./positions.js";

// ajv-formats is CommonJS with a default export; NodeNext types see the namespace
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

export type SchemaKind = "Policy" | "RuleSet" | "PolicyTest" | "RecordedInventory";

const SCHEMA_FILES: Record<SchemaKind, string> = {
  Policy: "policy.schema.json",
  RuleSet: "ruleset.schema.json",
  PolicyTest: "policy-test.schema.json",
  RecordedInventory: "recorded-inventory.schema.json",
};

export const SCHEMA_DIR = fileURLToPath(new URL("../../schemas/", import.meta.url));

let validators: Map<SchemaKind, ValidateFunction> | undefined;

function getValidator(kind: SchemaKind): ValidateFunction {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const loaded = new Map<SchemaKind, ValidateFunction>();
    const schemas = Object.entries(SCHEMA_FILES).map(([k, f]) => [k as SchemaKind, JSON.parse(readFileSync(SCHEMA_DIR + f, "utf8"))] as const);
    // every schema is registered first so cross-file $refs (ruleset -> policy) resolve
    for (const [, s] of schemas) ajv.addSchema(s);
    for (const [k, s] of schemas) loaded.set(k, ajv.getSchema(s.$id as string)!);
    validators = loaded;
  }
  return validators.get(kind)!;
}

/**
 * Validates one parsed file and maps every ajv error to its line:col. `ruleOf` names the rule
 * an error sits in (from the path), so problems read `file:line:col: rule: message`.
 */
export function validateSchema(kind: SchemaKind, src: SourceFile, ruleOf: (path: string[]) => string | undefined = () => undefined): { problems: PolicyProblem[]; paths: string[][] } {
  const validate = getValidator(kind);
  if (validate(src.data)) return { problems: [], paths: [] };
  // "property name must be valid" only repeats the more precise error ajv gives just before it
  const errors = dedupe((validate.errors ?? []).filter((e) => e.keyword !== "propertyNames"));
  const paths = errors.map((e) => pointerToPath(e.instancePath));
  const problems = errors.map((e) => {
    const path = pointerToPath(e.instancePath);
    if (e.keyword === "additionalProperties") {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      return src.problem([...path, extra], `unknown field "${extra}"${hint(kind, path, extra)}`, ruleOf(path), { key: true });
    }
    const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
    if (propertyName !== undefined) {
      return src.problem([...path, propertyName], `${describe(path)}: key "${propertyName}" ${messageOf(e)}${e.keyword === "pattern" && path[path.length - 1] === "actionPolicies" ? " (action policy files are named <agent>.policy)" : e.keyword === "pattern" && path[path.length - 1] === "opaPolicies" ? " (OPA policy files are named <agent>.rego or default.rego)" : ""}`, ruleOf(path), { key: true });
    }
    if (e.keyword === "required") {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return src.problem(path, `missing required field "${missing}"`, ruleOf(path));
    }
    return src.problem(path, `${describe(path)} ${messageOf(e)}`, ruleOf(path));
  });
  return { problems, paths };
}

function describe(path: string[]): string {
  return path.length ? path.join(".") : "document";
}

function messageOf(e: ErrorObject): string {
  if (e.keyword === "enum") return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  if (e.keyword === "const") return `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  if (e.keyword === "type" && (e.params as { type: string }).type === "string") return "must be a string (quote numbers and booleans in YAML)";
  if (e.keyword === "type" && (e.params as { type: string }).type === "boolean") return "must be true or false (yes/no/on/off are strings in YAML 1.2)";
  return e.message ?? e.keyword;
}

function hint(kind: SchemaKind, path: string[], extra: string): string {
  const last = path[path.length - 1];
  if (kind !== "Policy" && kind !== "RuleSet") return "";
  if (extra === "event" || extra === "actions") return ' (rules put their effects under "then")';
  if (extra === "when") return ' (rules put their tests under "conditions")';
  if (last === "then" && ["config", "brokers"].includes(extra)) return extra === "config" ? ' (did you mean "configuration"?)' : ' (did you mean "brokerSet"?)';
  // the legacy helper's output key, the one thing a migrating author will type
  if ((last === "then" || last === "defaults") && (extra === "server_claims" || extra === "serverclaims")) return ' (did you mean "serverClaims"?)';
  if (last === "serverClaims") return " (server JWT claims a policy sets: ou, exp, collectives, pub_subjects, permissions)";
  if (last === "permissions" && path[path.length - 2] === "serverClaims") return " (server permissions: submission, streams, governor, service_host)";
  return "";
}

/** ajv sometimes reports the same spot twice (e.g. per schema branch); one line per spot is enough */
function dedupe(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
