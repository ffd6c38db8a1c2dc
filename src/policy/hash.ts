import { createHash } from "node:crypto";

/**
 * Canonical JSON: keys sorted, no whitespace. Comments, key order and YAML styling do not
 * change a policy's meaning, so they must not change its hash either.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return "[" + v.map(canonicalJson).join(",") + "]";
  const keys = Object.keys(v as Record<string, unknown>)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson((v as Record<string, unknown>)[k])).join(",") + "}";
}

/** "sha256:<hex>" over the policy and its included rule sets, in include order */
export function policySetHash(policy: unknown, ruleSets: unknown[]): string {
  const h = createHash("sha256");
  h.update(canonicalJson({ policy, ruleSets }));
  return "sha256:" + h.digest("hex");
}
