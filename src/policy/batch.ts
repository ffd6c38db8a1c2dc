/**
 * Many nodes in one process: `policy eval --inventories` evaluates a directory of inventories
 * with one loaded policy set, and `policy compare` checks the decisions an audit log recorded
 * (a helper's, or an older policy's) against what the current policy decides for the same nodes.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Decision, DecisionRecord, Inventory, PolicyRef } from "../types/index.js";
import type { KeyChange } from "./diff.js";
import { inventoryFromFile, InventoryFileError, readInputFile } from "./inventory-file.js";
import type { PolicySet } from "./index.js";

export interface InventoryEntry {
  file: string;
  inventory?: Inventory;
  /** why the file could not be read as an inventory (names the file) */
  error?: string;
}

/** every *.json file of `dir` in name order, each read as an inventory or with the reason it could not be */
export function readInventoryDir(dir: string): InventoryEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InventoryFileError(code === "ENOENT" ? `${dir}: no such directory` : `${dir}: cannot read: ${(e as Error).message}`);
  }
  return names.map((f) => {
    const file = join(dir, f);
    try {
      return { file, inventory: inventoryFromFile(file) };
    } catch (e) {
      if (e instanceof InventoryFileError) return { file, error: e.message };
      throw e;
    }
  });
}

/** the decisions the audit log holds, the latest per node; error and refused records decide nothing, nor do lines of another kind */
export function auditDecisions(file: string): Map<string, DecisionRecord> {
  const text = readInputFile(file);
  const out = new Map<string, DecisionRecord>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let r: DecisionRecord;
    try {
      r = JSON.parse(line) as DecisionRecord;
    } catch (e) {
      throw new InventoryFileError(`${file}:${i + 1}: not a JSON decision record: ${(e as Error).message}`);
    }
    // the audit's other lines (configure requests, arrival verdicts, operator actions) name their kind and decide nothing
    if (typeof r === "object" && r !== null && typeof (r as { kind?: unknown }).kind === "string") continue;
    if (typeof r !== "object" || r === null || typeof r.identity !== "string" || typeof r.outcome !== "string") throw new InventoryFileError(`${file}:${i + 1}: not a decision record (needs identity and outcome)`);
    if (r.outcome === "error" || r.outcome === "refused") continue;
    out.set(r.identity, r);
  }
  return out;
}

export interface AuditDifference {
  identity: string;
  /** the inventory file evaluated */
  file: string;
  live: { outcome: DecisionRecord["outcome"]; policy?: PolicyRef; time: string; reason: string };
  now: { outcome: Decision["outcome"]; reason: string };
  changes: KeyChange[];
}

export interface CompareResult {
  policy: PolicyRef;
  /** nodes with a decision in the audit log */
  audited: number;
  /** of those, nodes with an inventory, evaluated with the current policy */
  compared: number;
  /** audited nodes without a (readable) inventory in the directory */
  noInventory: string[];
  differ: AuditDifference[];
}

/** the audit's redaction (provision/redact.ts), passed in so both sides are compared as recorded */
export type Redactor = (cfg: Record<string, string>) => Record<string, string>;

/**
 * What the live decision (from the audit log) and the current policy's differ in: the outcome
 * and, for configure, each configuration key. With the audit's redactor a secret value is
 * compared for presence only and never printed.
 */
export function diffAgainstRecord(r: DecisionRecord, d: Decision, redact: Redactor = (c) => c): KeyChange[] {
  const out: KeyChange[] = [];
  if (r.outcome !== d.outcome) out.push({ key: "outcome", from: r.outcome, to: d.outcome });
  if (r.outcome !== "configure" || d.outcome !== "configure") return out;
  const live = r.configuration ?? {};
  const now = redact(d.configuration);
  for (const k of [...new Set([...Object.keys(live), ...Object.keys(now)])].sort()) {
    if (live[k] !== now[k]) out.push({ key: `configuration.${k}`, from: live[k], to: now[k] });
  }
  if (r.brokerSet !== undefined && d.brokerSet !== undefined && r.brokerSet !== d.brokerSet) out.push({ key: "brokerSet", from: r.brokerSet, to: d.brokerSet });
  return out;
}

export async function compareWithAudit(set: PolicySet, auditFile: string, inventoriesDir: string, redact?: Redactor): Promise<CompareResult> {
  const audited = auditDecisions(auditFile);
  const byIdentity = new Map<string, InventoryEntry>();
  for (const e of readInventoryDir(inventoriesDir)) if (e.inventory) byIdentity.set(e.inventory.identity, e);
  const res: CompareResult = { policy: set.ref, audited: audited.size, compared: 0, noInventory: [], differ: [] };
  for (const [identity, r] of [...audited].sort(([a], [b]) => a.localeCompare(b))) {
    const e = byIdentity.get(identity);
    if (!e?.inventory) {
      res.noInventory.push(identity);
      continue;
    }
    res.compared++;
    const d = await set.evaluate(e.inventory);
    const changes = diffAgainstRecord(r, d, redact);
    if (changes.length) res.differ.push({ identity, file: e.file, live: { outcome: r.outcome, policy: r.policy, time: r.time, reason: r.reason }, now: { outcome: d.outcome, reason: d.reason }, changes });
  }
  return res;
}
