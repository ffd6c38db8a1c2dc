/**
 * Validators built from the official Choria wire schemas (draft-04), read from the go-choria
 * module the Go toolchain downloaded (see go-choria-module.ts). Tests that use them pass
 * `{ skip: OFFICIAL_SKIP }`, so a machine without Go names what it did not check.
 */
import Ajv04 from "ajv-draft-04";
import { GO_CHORIA_SKIP, wireSchemaJson } from "./go-choria-module.js";

export const OFFICIAL_SKIP = GO_CHORIA_SKIP;

const ajv = new (Ajv04 as unknown as typeof Ajv04.default)({ strict: false, allErrors: true });
const cache = new Map<string, (d: unknown) => boolean>();

export function officialValidator(version: "v1" | "v2", kind: "transport" | "secure_request" | "request" | "secure_reply" | "reply") {
  const key = `${version}/${kind}`;
  let v = cache.get(key);
  if (!v) {
    const schema = wireSchemaJson(version, kind);
    delete schema.$schema;
    const fn = ajv.compile(schema);
    v = (d: unknown) => fn(d) as boolean;
    cache.set(key, v);
  }
  return v;
}

export function assertOfficial(version: "v1" | "v2", kind: Parameters<typeof officialValidator>[1], doc: unknown): void {
  const v = officialValidator(version, kind);
  if (!v(doc)) throw new Error(`${version} ${kind} does not validate against the official schema: ${JSON.stringify(doc).slice(0, 300)}`);
}
