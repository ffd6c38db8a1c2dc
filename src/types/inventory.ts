/**
 * What the provisioner knows about one node when it decides: the rpcutil#inventory
 * data plus what the CSR and provisioning JWT told us. Policies see exactly this
 * shape (fact paths like `facts.country`, `csr.cn`, `jwt.chu`), so it is defined once here.
 */
export type KeyType = "rsa" | "ecdsa" | "ed25519" | "unknown";

export interface CsrSummary {
  /** subject CN as the node put it in the CSR */
  cn: string;
  /** DNS (and IP, as strings) subjectAltNames requested in the CSR */
  sans: string[];
  keyType: KeyType;
  /** modulus bits for RSA, curve size for ECDSA (256, 384), 256 for Ed25519 */
  keyBits: number;
  /** named curve for ECDSA keys, e.g. "P-256" */
  curve?: string;
  /**
   * the ssl directory the node's gencsr reported, where it keeps the key it made: a go-choria
   * server reports <config dir>/ssl (e.g. /etc/choria/ssl). Not part of the CSR itself.
   */
  ssldir?: string;
}

export interface MachineInfo {
  name: string;
  state: string;
  version: string;
}

export interface Inventory {
  identity: string;
  facts: Record<string, unknown>;
  agents: string[];
  classes: string[];
  collectives: string[];
  mainCollective: string;
  dataPlugins: string[];
  machines: MachineInfo[];
  version: string;
  upgradable: boolean;
  csr?: CsrSummary;
  /** verified provisioning JWT claims (issue 7), absent when the jwt feature is off */
  jwt?: Record<string, unknown>;
}

/** The data object of an rpcutil#inventory reply exactly as a node returns it. */
export interface RpcutilInventoryData {
  agents?: string[];
  classes?: string[];
  collectives?: string[];
  data_plugins?: string[];
  facts?: Record<string, unknown>;
  machines?: MachineInfo[];
  main_collective?: string;
  version?: string;
  upgradable?: boolean;
}

/** Builds the policy-facing Inventory from the wire shape of rpcutil#inventory. */
export function inventoryFromRpcutil(identity: string, data: RpcutilInventoryData, extra: { csr?: CsrSummary; jwt?: Record<string, unknown> } = {}): Inventory {
  const inv: Inventory = {
    identity,
    facts: isPlainObject(data.facts) ? data.facts : {},
    agents: Array.isArray(data.agents) ? data.agents.map(String) : [],
    classes: Array.isArray(data.classes) ? data.classes.map(String) : [],
    collectives: Array.isArray(data.collectives) ? data.collectives.map(String) : [],
    mainCollective: typeof data.main_collective === "string" ? data.main_collective : "",
    dataPlugins: Array.isArray(data.data_plugins) ? data.data_plugins.map(String) : [],
    machines: Array.isArray(data.machines) ? data.machines : [],
    version: typeof data.version === "string" ? data.version : "",
    upgradable: data.upgradable === true,
  };
  if (extra.csr) inv.csr = extra.csr;
  if (extra.jwt) inv.jwt = extra.jwt;
  return inv;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
