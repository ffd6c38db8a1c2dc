import type { Outcome } from "../types/index.js";
import type { CompiledTemplate } from "./template.js";

/** Document shapes as written in YAML (after schema validation). */
export interface ConditionDoc {
  all?: ConditionDoc[];
  any?: ConditionDoc[];
  not?: ConditionDoc;
  fact?: string;
  operator?: string;
  value?: unknown;
}

export interface CertificateDoc {
  validityDays?: number;
  sans?: string[];
}

/** server JWT claims (features.ed25519) as written: the Go provisioner's helper `server_claims` keys */
export interface ServerClaimsDoc {
  ou?: string;
  /** Unix seconds */
  exp?: number;
  collectives?: string[];
  pub_subjects?: string[];
  permissions?: Partial<Record<ServerPermission, boolean>>;
}

/**
 * The permissions of go-choria's tokens.ServerPermissions, in its field order. The signer
 * (credentials/ed25519.ts) keeps only these; others would be silently dropped, so the schema
 * refuses them.
 */
export const SERVER_PERMISSIONS = ["submission", "streams", "governor", "service_host"] as const;
export type ServerPermission = (typeof SERVER_PERMISSIONS)[number];

export interface ThenDoc {
  outcome?: Outcome;
  reason?: string;
  brokerSet?: string;
  configuration?: Record<string, string>;
  certificate?: CertificateDoc;
  upgrade?: { version: string; repository?: string };
  /** outcome defer: seconds until the node is decided again */
  retryAfter?: number;
  actionPolicies?: Record<string, string>;
  opaPolicies?: Record<string, string>;
  serverClaims?: ServerClaimsDoc;
  /** the node waits as awaiting_approval until an operator approves the decision */
  approval?: "required" | { reason: string };
}

export interface RuleDoc {
  name: string;
  description?: string;
  priority?: number;
  stop?: boolean;
  conditions: ConditionDoc;
  then: ThenDoc;
}

export interface PolicyDoc {
  apiVersion: string;
  kind: "Policy";
  metadata: { name: string; version: string; description?: string };
  include?: string[];
  vars?: Record<string, string>;
  brokerSets?: Record<string, string[]>;
  defaults?: Omit<ThenDoc, "outcome" | "reason" | "upgrade" | "retryAfter">;
  rules?: RuleDoc[];
}

export interface RuleSetDoc {
  apiVersion: string;
  kind: "RuleSet";
  metadata: { name: string; version?: string; description?: string };
  rules: RuleDoc[];
}

/** A condition after compilation: the user's dotted path kept for explanations. */
export type CompiledCondition =
  | { kind: "all" | "any"; children: CompiledCondition[] }
  | { kind: "not"; child: CompiledCondition }
  | { kind: "test"; fact: string; operator: string; value: unknown };

/** What a rule (or the policy defaults) sets, with templates compiled. */
export interface CompiledThen {
  outcome?: Outcome;
  reason?: CompiledTemplate;
  brokerSet?: string;
  configuration: Array<[string, CompiledTemplate]>;
  validityDays?: number;
  sans: CompiledTemplate[];
  upgrade?: { version: string; repository?: string };
  retryAfter?: number;
  actionPolicies: Array<[string, string]>;
  opaPolicies: Array<[string, string]>;
  /** absent when the layer sets no claim, so merging a policy without any costs one check per layer */
  serverClaims?: CompiledServerClaims;
  /** present when the layer asks for manual approval; reason absent for `approval: required` */
  approval?: { reason?: CompiledTemplate };
}

/** each claim (and each permission) merges like a configuration key: first layer that sets it wins */
export interface CompiledServerClaims {
  ou?: CompiledTemplate;
  exp?: number;
  /** a list is one value: the winning layer's list replaces, it is not a union like SANs */
  collectives?: CompiledTemplate[];
  pub_subjects?: CompiledTemplate[];
  permissions: Array<[ServerPermission, boolean]>;
}

export interface CompiledRule {
  /** declaration order across the whole set: included rule sets in include order, then the policy */
  index: number;
  name: string;
  priority: number;
  stop: boolean;
  /** "" for rules written in the policy itself */
  ruleSet: string;
  /** file:line:col */
  source: string;
  condition: CompiledCondition;
  then: CompiledThen;
}

export interface CompiledPolicy {
  name: string;
  version: string;
  hash: string;
  files: string[];
  vars: Record<string, string>;
  brokerSets: Record<string, string[]>;
  defaults: CompiledThen;
  /** file:line:col of each key under `defaults` (configuration keys by name, plus "brokerSet"), for explanations */
  defaultSources: Record<string, string>;
  rules: CompiledRule[];
  /** fact roots any condition reads; only these are handed to the engine */
  roots: string[];
}

export const DEFAULT_PRIORITY = 50;
export const DEFAULT_VALIDITY_DAYS = 365;

/** set by the provisioner on every configure decision; a policy may not set them */
export const RESERVED_KEYS: Readonly<Record<string, string>> = {
  "plugin.choria.server.provision": "always false, or the node would be provisioned forever",
  identity: "always the node's identity",
  "plugin.choria.middleware_hosts": "always the chosen broker set",
};
