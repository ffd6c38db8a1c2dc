/** Simulated provisioning-mode Choria servers: the other side of the wire for tests, demo and bench. */
export { startFleet, type Fleet, type FleetOptions } from "./fleet.js";
export type { FleetReport, FleetTotals, NodeReport } from "./report.js";
export { FAULT_NAMES, parseFaultSpec, type FaultName, type FaultOptions } from "./faults.js";
export { generateFacts, identityOf, loadFactsFile, KNOWN_DCS, UNKNOWN_DCS, type Facts, type FactsInput } from "./facts.js";
export { KeyPool, defaultKeyCacheDir } from "./keypool.js";
export { Mode } from "./node.js";
export { RawJson, nestedJson } from "./raw-json.js";
export { LOCKED_ERROR, TOKEN_ERROR, LOCK_WINDOW_MS } from "./agents/choria-provision.js";
export { CONFIG_FILE, SSL_DIR } from "./runtime.js";
