/**
 * --record DIR: every inventory seen is written as a RecordedInventory fixture
 * (<DIR>/<identity>.json), ready for `policy test`. Secrets are left out: the provisioning
 * JWT's token and password claims never reach the file.
 *
 * The recorder never fails a node. An inventory nested deeper or larger than the limits is not
 * written (JSON.stringify overflows the stack on facts nested a few thousand deep, and a
 * pretty-printed file grows with the depth); the node's record gets a note instead, and the flow
 * goes on.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { measureJson, type Inventory, type JsonLimits, type RecordedInventory, type RpcutilInventoryData } from "../types/index.js";

const SECRET_CLAIMS = new Set(["cht", "chpwd", "token", "password"]);

/** records one inventory; returns a note for the node's record when it was not recorded */
export type InventoryRecorder = (identity: string, raw: RpcutilInventoryData, inv: Inventory) => string | undefined;

export type NotRecordedReason = "too_deep" | "too_large" | "write_failed";

export interface RecorderOptions {
  limits: JsonLimits;
  /** an inventory not recorded: the note the node's record gets, or a failed write's error (which comes later) */
  notRecorded?: (reason: NotRecordedReason, identity: string, detail: string) => void;
}

/** the config keys that set the limits, named in notes so an operator knows what to raise */
const LIMIT_KEYS = { too_deep: "record_limits.max_depth", too_large: "record_limits.max_bytes" } as const;

const INDENT = 2;

export function toRecorded(identity: string, raw: RpcutilInventoryData, inv: Inventory, now = new Date()): RecordedInventory {
  const r: RecordedInventory = { apiVersion: "choria-provisioner/v1", kind: "RecordedInventory", identity, recordedAt: now.toISOString(), inventory: raw };
  if (inv.csr) r.csr = inv.csr;
  if (inv.jwt) r.jwt = Object.fromEntries(Object.entries(inv.jwt).filter(([k]) => !SECRET_CLAIMS.has(k)));
  return r;
}

/** the file's text, or why it is not written */
export function recordedText(rec: RecordedInventory, limits: JsonLimits): { text: string } | { reason: "too_deep" | "too_large"; note: string } {
  const m = measureJson(rec, limits, INDENT);
  const text = m.ok ? JSON.stringify(rec, null, INDENT) + "\n" : "";
  // the measure counts characters; escapes and multi-byte characters can make the text longer
  const problem = !m.ok ? m.problem : Buffer.byteLength(text) > limits.maxBytes ? "too_large" : undefined;
  if (!problem) return { text };
  const what = !m.ok ? m.message : `more than ${limits.maxBytes} bytes as JSON`;
  return { reason: problem, note: `facts ${problem === "too_deep" ? "too deep" : "too large"}: inventory not recorded, ${what} (${LIMIT_KEYS[problem]})` };
}

export interface Recorder {
  record: InventoryRecorder;
  /** resolves once every write started so far has ended: the daemon's stop waits for them */
  close(): Promise<void>;
}

export function createRecorder(dir: string, o: RecorderOptions): Recorder {
  mkdirSync(dir, { recursive: true });
  const writing = new Set<Promise<void>>();
  return {
    record(identity, raw, inv) {
      const out = recordedText(toRecorded(identity, raw, inv), o.limits);
      if ("note" in out) {
        o.notRecorded?.(out.reason, identity, out.note);
        return out.note;
      }
      // identities are DNS names validated by intake; keep path separators out anyway
      const safe = identity.replace(/[/\\]/g, "_");
      const w = writeFile(join(dir, `${safe}.json`), out.text)
        .catch((e: Error) => o.notRecorded?.("write_failed", identity, `could not record the inventory: ${e.message}`))
        .finally(() => writing.delete(w));
      writing.add(w);
      return undefined;
    },
    async close() {
      await Promise.all(writing);
    },
  };
}
