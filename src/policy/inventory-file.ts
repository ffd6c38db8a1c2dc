import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { jsonErrorOffset, lineCol } from "./json-position.js";
import { inventoryFromRpcutil, type CsrSummary, type Inventory, type RecordedInventory, type RpcutilInventoryData } from "../types/index.js";

/** a bad inventory file: the message names the file and, for JSON errors, line:col */
export class InventoryFileError extends Error {}

/**
 * Reads an inventory for `policy eval`/`test`/`diff`. Accepted shapes:
 *  - a RecordedInventory (kind: RecordedInventory),
 *  - rpcutil#inventory reply data exactly as a node returns it (identity from `identity`
 *    or the file name without .json),
 *  - the legacy helper input ({identity, inventory: "<json string>", jwt}), to help migrations.
 */
export function inventoryFromFile(path: string, identity?: string): Inventory {
  return inventoryFromJson(parseJson(readInputFile(path), path), path, identity);
}

/** a file the user named (an inventory, an audit log): a missing or unreadable one is an InventoryFileError naming it */
export function readInputFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InventoryFileError(code === "ENOENT" ? `${path}: file not found` : `${path}: cannot read: ${(e as Error).message}`);
  }
}

export function inventoryFromJson(data: unknown, path: string, identity?: string): Inventory {
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new InventoryFileError(`${path}: expected a JSON object`);
  const o = data as Record<string, unknown>;
  if (o.kind === "RecordedInventory") {
    const r = o as unknown as RecordedInventory;
    if (typeof r.identity !== "string" || r.identity === "") throw new InventoryFileError(`${path}: RecordedInventory without identity`);
    if (typeof r.inventory !== "object" || r.inventory === null) throw new InventoryFileError(`${path}: RecordedInventory without inventory data`);
    const extra: { csr?: CsrSummary; jwt?: Record<string, unknown> } = {};
    if (r.csr) extra.csr = r.csr;
    if (r.jwt) extra.jwt = r.jwt;
    return inventoryFromRpcutil(identity ?? r.identity, r.inventory, extra);
  }
  if (typeof o.inventory === "string" && typeof o.identity === "string") {
    const inner = parseJson(o.inventory, `${path} (inventory field)`) as RpcutilInventoryData;
    const extra: { jwt?: Record<string, unknown> } = {};
    if (typeof o.jwt === "object" && o.jwt !== null) {
      // secrets never reach a policy
      const { cht: _t, chpwd: _p, ...claims } = o.jwt as Record<string, unknown>;
      extra.jwt = claims;
    }
    return inventoryFromRpcutil(identity ?? o.identity, inner, extra);
  }
  const looksRaw = ["agents", "facts", "version", "collectives", "main_collective"].some((k) => k in o);
  if (!looksRaw) throw new InventoryFileError(`${path}: neither a RecordedInventory nor rpcutil#inventory data (no agents/facts/version fields)`);
  const id = identity ?? basename(path).replace(/\.json$/, "");
  if (!id) throw new InventoryFileError(`${path}: cannot tell the node identity; pass --identity`);
  return inventoryFromRpcutil(id, o as RpcutilInventoryData);
}

/** JSON.parse with the error position as line:col */
export function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = jsonErrorOffset(text);
    if (at === undefined) throw new InventoryFileError(`${path}: invalid JSON: ${msg}`);
    const { line, col } = lineCol(text, at);
    const near = at >= text.length ? "unexpected end of input" : `unexpected ${JSON.stringify(text.slice(at, at + 12).split("\n")[0])}`;
    throw new InventoryFileError(`${path}:${line}:${col}: invalid JSON: ${near}`);
  }
}
