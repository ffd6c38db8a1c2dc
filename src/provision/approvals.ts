/**
 * Manual approval: nodes whose decision asks for it (`approval:` in a policy rule) wait here
 * with what is needed to re-check them (their inventory and the decision's fingerprint) until
 * an operator grants or denies them. The store is JetStream KV under HA (ha/records.ts), so a
 * waiting node survives a restart and a handover and every instance lists it; a standalone
 * daemon keeps them in memory (MemoryApprovalStore).
 *
 * A grant names the fingerprint of the decision approved. The granted node is provisioned
 * again from the start (jwt, inventory, a fresh CSR: the node may have restarted and made a
 * new key meanwhile), and is configured only when that run's decision has the approved
 * fingerprint; otherwise it waits again with the new decision.
 */
import { createHash } from "node:crypto";
import type { Decision, DecisionRecord, Inventory, PolicyRef } from "../types/index.js";

export interface OperatorContext {
  /** the token holder, or the name given with --operator */
  operator: string;
  /** the remote address the request came from */
  from: string;
}

export interface ApprovalDecision {
  policy: PolicyRef;
  brokerSet?: string;
  reason: string;
  fingerprint: string;
  fired: DecisionRecord["fired"];
}

export interface ApprovalEntry {
  identity: string;
  status: "waiting" | "granted" | "denied";
  /** ISO-8601: when the node started waiting */
  since: string;
  /** why approval is required (the rule's approval reason) */
  reason: string;
  decision: ApprovalDecision;
  /** the inventory the decision was made from (public JWT claims only), for the re-check */
  inventory: Inventory;
  rawInventory: Record<string, unknown>;
  grant?: { fingerprint: string; by: string; from: string; at: string; policyVersion: string };
  denial?: { by: string; from: string; at: string; reason: string };
}

/** where waiting nodes live: KV under HA, memory otherwise; get/all read a local mirror */
export interface ApprovalStore {
  put(e: ApprovalEntry): Promise<void>;
  delete(identity: string): Promise<void>;
  get(identity: string): ApprovalEntry | undefined;
  all(): Iterable<ApprovalEntry>;
  /** told of every change, including other instances' (undefined: deleted) */
  onChange(cb: (identity: string, e: ApprovalEntry | undefined) => void): void;
  close(): Promise<void>;
}

export class MemoryApprovalStore implements ApprovalStore {
  private readonly entries = new Map<string, ApprovalEntry>();
  private readonly listeners: Array<(identity: string, e: ApprovalEntry | undefined) => void> = [];
  async put(e: ApprovalEntry): Promise<void> {
    this.entries.set(e.identity, e);
    for (const l of this.listeners) l(e.identity, e);
  }
  async delete(identity: string): Promise<void> {
    if (!this.entries.delete(identity)) return;
    for (const l of this.listeners) l(identity, undefined);
  }
  get(identity: string): ApprovalEntry | undefined {
    return this.entries.get(identity);
  }
  all(): Iterable<ApprovalEntry> {
    return this.entries.values();
  }
  onChange(cb: (identity: string, e: ApprovalEntry | undefined) => void): void {
    this.listeners.push(cb);
  }
  async close(): Promise<void> {}
}

/**
 * What an operator approves: everything the node would be sent and signed with. The policy
 * version is not part of it, so a reload that decides the same does not ask for confirmation.
 */
export function decisionFingerprint(d: Decision): string {
  const { outcome, brokerSet, brokers, configuration, certificate, actionPolicies, opaPolicies, serverClaims, upgradeVersion, upgradeRepository } = d;
  const json = JSON.stringify({ outcome, brokerSet, brokers, configuration, certificate, actionPolicies, opaPolicies, serverClaims, upgradeVersion, upgradeRepository });
  return "sha256:" + createHash("sha256").update(json).digest("hex");
}

export function approvalDecision(d: Decision): ApprovalDecision {
  const out: ApprovalDecision = { policy: d.policy, reason: d.reason, fingerprint: decisionFingerprint(d), fired: d.fired.map((f) => ({ name: f.name, ruleSet: f.ruleSet, why: f.why, priority: f.priority, source: f.source })) };
  if (d.brokerSet !== undefined) out.brokerSet = d.brokerSet;
  return out;
}

/** the parts of a decision an operator compares when it changed between waiting and approval */
export function decisionSummary(d: Decision | ApprovalDecision & { outcome?: string }): Record<string, unknown> {
  return { outcome: (d as { outcome?: string }).outcome ?? "configure", policy: `${d.policy.name} ${d.policy.version}`, brokerSet: d.brokerSet, reason: d.reason, fired: d.fired.map((f) => f.name) };
}
