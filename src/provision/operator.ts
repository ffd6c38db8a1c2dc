/**
 * Operator actions on single nodes, behind the token-guarded admin routes: approve and deny
 * nodes awaiting approval, retry a failed or deferred node now, clear a hold, forget a node.
 * Each is audited (who, from where, when) and counted; none throws for a node it cannot act
 * on: the answer says why, per node.
 */
import type { Decider } from "../types/index.js";
import { decisionFingerprint, decisionSummary, type ApprovalStore, type OperatorContext } from "./approvals.js";
import type { NodeFilter, NodeRegistry } from "./node-registry.js";
import type { IntakeSource } from "./queue.js";

export const OPERATOR_ACTIONS = ["approve", "deny", "retry", "clear", "forget"] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

export interface ActionRequest extends OperatorContext {
  action: OperatorAction;
  identities: string[];
  /** --all-matching: every node the filter selects (approve: those awaiting approval) */
  filter?: NodeFilter;
  /** approve: go ahead although the decision changed since the node started waiting */
  confirm?: boolean;
  /** deny: why */
  reason?: string;
}

export interface ActionResult {
  identity: string;
  /** done, or why not: unknown, not_waiting, changed, not_held, busy, failed */
  result: "done" | "unknown" | "not_waiting" | "changed" | "not_held" | "busy" | "failed";
  message: string;
  /** approve with result changed: the decision approved then and the one the current policy makes */
  was?: Record<string, unknown>;
  now?: Record<string, unknown>;
}

/** one line of the audit log per operator action and node */
export interface OperatorAuditEntry {
  kind: "operator_action";
  time: string;
  action: OperatorAction;
  identity: string;
  operator: string;
  from: string;
  result: ActionResult["result"];
  message: string;
  reason?: string;
}

export interface OperatorDeps {
  nodes: NodeRegistry;
  approvals: ApprovalStore;
  decider(): Decider;
  /** removes the queue's hold on the node */
  releaseHold(identity: string): void;
  offer(identity: string, source: IntakeSource): string;
  audit(e: OperatorAuditEntry): void;
  counted(action: OperatorAction, result: ActionResult["result"]): void;
}

const RETRYABLE = new Set(["failed", "deferred", "refused", "held", "shutdown", "upgrading", "provisioned", "released"]);

export class OperatorActions {
  constructor(private readonly d: OperatorDeps) {}

  async run(req: ActionRequest): Promise<ActionResult[]> {
    const ids = new Set(req.identities);
    if (req.filter) {
      const f = req.action === "approve" || req.action === "deny" ? { ...req.filter, state: "awaiting_approval" } : req.filter;
      for (const n of this.d.nodes.list(f)) ids.add(n.identity);
    }
    const out: ActionResult[] = [];
    for (const id of ids) {
      let r: ActionResult;
      try {
        r = await this.one(req, id);
      } catch (e) {
        r = { identity: id, result: "failed", message: (e as Error).message };
      }
      this.d.counted(req.action, r.result);
      const entry: OperatorAuditEntry = { kind: "operator_action", time: new Date().toISOString(), action: req.action, identity: id, operator: req.operator, from: req.from, result: r.result, message: r.message };
      if (req.reason !== undefined) entry.reason = req.reason;
      this.d.audit(entry);
      out.push(r);
    }
    return out;
  }

  private async one(req: ActionRequest, id: string): Promise<ActionResult> {
    switch (req.action) {
      case "approve":
        return this.approve(req, id);
      case "deny":
        return this.deny(req, id);
      case "retry":
        return this.retry(id);
      case "clear":
        return this.clear(id);
      case "forget":
        return this.forget(id);
    }
  }

  private async approve(req: ActionRequest, id: string): Promise<ActionResult> {
    const e = this.d.approvals.get(id);
    if (!e) return { identity: id, result: this.d.nodes.has(id) ? "not_waiting" : "unknown", message: "not awaiting approval" };
    if (e.status === "granted") return { identity: id, result: "done", message: `already approved by ${e.grant?.by}` };
    // re-checked against the policy in force now, on the inventory the node was decided on
    const decider = this.d.decider();
    const now = await decider.decide({ inventory: e.inventory, rawInventory: e.rawInventory });
    const fingerprint = decisionFingerprint(now);
    if (fingerprint !== e.decision.fingerprint && !req.confirm) {
      return { identity: id, result: "changed", message: `the decision changed since the node started waiting (policy ${e.decision.policy.version} -> ${now.policy.version}); check it and approve with --confirm`, was: decisionSummary(e.decision), now: decisionSummary(now) };
    }
    if (now.outcome !== "configure") return { identity: id, result: "changed", message: `the policy in force now decides ${now.outcome}: ${now.reason}; not approved`, was: decisionSummary(e.decision), now: decisionSummary(now) };
    await this.d.approvals.put({ ...e, status: "granted", grant: { fingerprint, by: req.operator, from: req.from, at: new Date().toISOString(), policyVersion: now.policy.version } });
    return { identity: id, result: "done", message: `approved with policy ${now.policy.version}; the node is provisioned again from the start` };
  }

  private async deny(req: ActionRequest, id: string): Promise<ActionResult> {
    const e = this.d.approvals.get(id);
    if (!e || e.status === "denied") return { identity: id, result: e ? "done" : this.d.nodes.has(id) ? "not_waiting" : "unknown", message: e ? "already denied" : "not awaiting approval" };
    const reason = req.reason ?? "";
    await this.d.approvals.put({ ...e, status: "denied", denial: { by: req.operator, from: req.from, at: new Date().toISOString(), reason } });
    return { identity: id, result: "done", message: `denied: ${reason}; held until cleared (nodes clear)` };
  }

  private retry(id: string): ActionResult {
    const state = this.d.nodes.state(id);
    if (state === undefined) return { identity: id, result: "unknown", message: "not known to this instance" };
    if (state === "queued" || state === "in_flight") return { identity: id, result: "busy", message: `already ${state}` };
    if (state === "awaiting_approval" || state === "denied") return { identity: id, result: "not_held", message: `${state}: use nodes approve, or nodes clear` };
    if (!RETRYABLE.has(state)) return { identity: id, result: "not_held", message: `${state} is not a state to retry from` };
    this.d.releaseHold(id);
    const q = this.d.offer(id, "manual");
    return q === "queued" ? { identity: id, result: "done", message: "queued" } : { identity: id, result: "failed", message: `not queued: ${q}` };
  }

  private async clear(id: string): Promise<ActionResult> {
    const known = this.d.nodes.has(id);
    const e = this.d.approvals.get(id);
    if (!known && !e) return { identity: id, result: "unknown", message: "not known to this instance" };
    this.d.releaseHold(id);
    if (e) await this.d.approvals.delete(id);
    this.d.nodes.unhold(id, "released");
    return { identity: id, result: "done", message: "released: the node is provisioned again when it is next found" };
  }

  private async forget(id: string): Promise<ActionResult> {
    const e = this.d.approvals.get(id);
    if (!this.d.nodes.has(id) && !e) return { identity: id, result: "unknown", message: "not known to this instance" };
    this.d.releaseHold(id);
    if (e) await this.d.approvals.delete(id);
    this.d.nodes.forget(id);
    return { identity: id, result: "done", message: "forgotten" };
  }
}
