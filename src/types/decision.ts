/**
 * The result of evaluating a policy for one node. The daemon applies it, `policy eval`
 * prints it, `policy test` compares it: one type for all three.
 */
export type Outcome = "configure" | "defer" | "shutdown" | "upgrade";

export interface PolicyRef {
  name: string;
  version: string;
  /** content hash of the whole policy set (policy + included rule sets), "sha256:<hex>" */
  hash: string;
}

export interface CertificateProfile {
  /** leaf certificate validity */
  validityDays: number;
  /** SANs beyond the identity, which is always present */
  sans: string[];
}

export interface ConditionExplanation {
  /** dotted fact path, e.g. facts.country */
  fact: string;
  operator: string;
  expected: unknown;
  /** the value the engine saw (undefined when the path did not resolve) */
  actual: unknown;
  result: boolean;
}

export interface FiredRule {
  name: string;
  priority: number;
  /** rule set the rule came from ("" for rules written in the policy itself) */
  ruleSet: string;
  /** file:line:col of the rule's definition */
  source: string;
  /** human summary of why it matched */
  why: string;
  conditions?: ConditionExplanation[];
}

export interface Decision {
  outcome: Outcome;
  /** human readable reason, always set (defer message, shutdown reason, ...) */
  reason: string;
  brokerSet?: string;
  /** host:port list from the broker set; never empty for configure */
  brokers: string[];
  /** exactly what choria_provision#configure receives as `config` (all strings) */
  configuration: Record<string, string>;
  certificate: CertificateProfile;
  /** target version for outcome "upgrade" */
  upgradeVersion?: string;
  upgradeRepository?: string;
  /** outcome defer: when to decide the node again, when the policy says (ms) */
  retryAfterMs?: number;
  actionPolicies: Record<string, string>;
  opaPolicies: Record<string, string>;
  policy: PolicyRef;
  fired: FiredRule[];
  /**
   * TLS material a legacy helper produced itself; when set the provisioner does not sign.
   * keyPem is only ever sent to the node encrypted to its ECDH key (§7.4), never recorded.
   */
  suppliedTls?: { certificatePem: string; caPem: string; ssldir?: string; keyPem?: string };
  /** overrides for the server JWT claims (features.ed25519, §7.3): a policy's serverClaims or the legacy helper's server_claims */
  serverClaims?: ServerClaims;
  /**
   * Set when a rule asks for manual approval (`approval:` in the policy): the node goes through
   * inventory, CSR checks and this decision, then waits as awaiting_approval until an operator
   * approves it (`nodes approve`). Only on configure decisions.
   */
  approval?: { reason: string };
}

/** A decision to try the node again later: no brokers, no configuration, nothing to sign. */
export function deferDecision(reason: string, policy: PolicyRef, validityDays = 0): Decision {
  return { outcome: "defer", reason, brokers: [], configuration: {}, certificate: { validityDays, sans: [] }, actionPolicies: {}, opaPolicies: {}, policy, fired: [] };
}

/** The part of a helper's `server_claims` the Go provisioner honours when it signs a server JWT; policies set the same keys. */
export interface ServerClaims {
  ou?: string;
  /** Unix seconds */
  exp?: number;
  collectives?: string[];
  pub_subjects?: string[];
  permissions?: { submission?: boolean; streams?: boolean; governor?: boolean; service_host?: boolean };
}

export interface DecisionRecord {
  identity: string;
  /** ISO-8601 */
  time: string;
  /**
   * refused: the CSR failed the CSR policy; error: a step failed (the node is tried again);
   * gone: nothing answers for the node any more (never there, or it left provisioning mode);
   * conflict: more than one server answered as this node
   */
  outcome: Outcome | "error" | "refused" | "awaiting_approval" | "gone" | "conflict";
  reason: string;
  policy?: PolicyRef;
  /** the rules applied, with their priority and file:line:col as `policy eval --explain` shows them */
  fired: Array<Pick<FiredRule, "name" | "ruleSet" | "why"> & Partial<Pick<FiredRule, "priority" | "source">>>;
  brokerSet?: string;
  /** configuration with secret values redacted */
  configuration?: Record<string, string>;
  certificate?: { serial: string; fingerprint: string; notAfter: string };
  /** verified provisioning JWT claims without secrets (cht, chpwd), when features.jwt is on */
  jwt?: Record<string, unknown>;
  /** the server JWT we signed (features.ed25519): its id and expiry, never the token itself */
  serverJwt?: { jti: string; exp: number; iss: string };
  /** non-fatal problems worth a look, e.g. a server_claims.exp that fell back to server_jwt_validity */
  warnings?: string[];
  /** outcome awaiting_approval: why; an approved node's record names who approved it */
  approval?: { reason: string; approvedBy?: string };
  /**
   * configure requests this flow sent, when it sent any; more than one means the node may have
   * applied its configuration more than once (a reply lost and the request sent again)
   */
  configures?: number;
  /** milliseconds per step, e.g. { inventory: 3, gencsr: 40, policy: 0.2, sign: 5, configure: 3, restart: 2, total: 60 } */
  durations: Record<string, number>;
  error?: string;
  /** replies to this node's requests that failed the checks: forged or garbled, each counted against this node */
  rejectedReplies?: { count: number; first: Array<{ step: string; reason: string }> };
}

/**
 * The audit's line for one configure request, written before the request is sent: a configure
 * whose reply is lost, or whose daemon is killed before the node's record is written, still
 * shows, and a node configured twice shows two of them.
 */
export interface ConfiguringRecord {
  kind: "configuring";
  identity: string;
  /** ISO-8601, just before the request went out */
  time: string;
  /** 1 for the flow's first configure request, 2 for the next (a retry after a lost reply) */
  attempt: number;
  /** the flow this request belongs to: its record's time (as an arrival record names it), policy and broker set */
  decision: { time: string; policy?: PolicyRef; brokerSet?: string };
  /** the certificate sent with it, when one was signed */
  certificate?: { serial: string; fingerprint: string };
}
