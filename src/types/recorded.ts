import type { CsrSummary, RpcutilInventoryData } from "./inventory.js";

/**
 * A recorded inventory: what one node reported, saved by `run --record DIR` or `sim --record DIR`
 * as `<DIR>/<identity>.json`, and used as input by `policy eval`, `policy test` and `policy diff`.
 * Secrets (tokens, JWT signatures, keys) are never recorded.
 */
export interface RecordedInventory {
  apiVersion: "choria-provisioner/v1";
  kind: "RecordedInventory";
  identity: string;
  /** ISO-8601 */
  recordedAt: string;
  /** the rpcutil#inventory reply data exactly as the node returned it */
  inventory: RpcutilInventoryData;
  csr?: CsrSummary;
  /** provisioning JWT claims, with cht/chpwd removed */
  jwt?: Record<string, unknown>;
}
