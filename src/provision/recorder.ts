/**
 * --record DIR: every inventory seen is written as a RecordedInventory fixture
 * (<DIR>/<identity>.json), ready for `policy test`. Secrets are left out: the provisioning
 * JWT's token and password claims never reach the file.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Inventory, RecordedInventory, RpcutilInventoryData } from "../types/index.js";

const SECRET_CLAIMS = new Set(["cht", "chpwd", "token", "password"]);

export function toRecorded(identity: string, raw: RpcutilInventoryData, inv: Inventory, now = new Date()): RecordedInventory {
  const r: RecordedInventory = { apiVersion: "choria-provisioner/v1", kind: "RecordedInventory", identity, recordedAt: now.toISOString(), inventory: raw };
  if (inv.csr) r.csr = inv.csr;
  if (inv.jwt) r.jwt = Object.fromEntries(Object.entries(inv.jwt).filter(([k]) => !SECRET_CLAIMS.has(k)));
  return r;
}

export function createRecorder(dir: string, onError?: (e: Error) => void): (identity: string, raw: RpcutilInventoryData, inv: Inventory) => void {
  mkdirSync(dir, { recursive: true });
  return (identity, raw, inv) => {
    // identities are NATS subject tokens already validated by intake; keep path separators out anyway
    const safe = identity.replace(/[/\\]/g, "_");
    writeFile(join(dir, `${safe}.json`), JSON.stringify(toRecorded(identity, raw, inv), null, 2) + "\n").catch((e: Error) => onError?.(e));
  };
}
