/**
 * The agent and action names and the status texts of provisioning, as a provisioning-mode
 * go-choria server speaks them: the provisioner's flow sends and reads them, the simulator
 * answers with them, so both take them from here.
 */

export const PROVISION_AGENT = "choria_provision";
export const RPCUTIL_AGENT = "rpcutil";

/** rpcutil#inventory: what a provisioner reads a node's facts, agents and classes from */
export const INVENTORY_ACTION = "inventory";
/** rpcutil#ping: the cheapest question a provisioning-mode server answers (the provisioner's probe of a silent node) */
export const PING_ACTION = "ping";

/** choria_provision's actions (go-choria's provision agent) */
export const PROVISION_ACTION = {
  configure: "configure",
  gen25519: "gen25519",
  gencsr: "gencsr",
  jwt: "jwt",
  release_update: "release_update",
  reprovision: "reprovision",
  restart: "restart",
  shutdown: "shutdown",
} as const;
export type ProvisionAction = (typeof PROVISION_ACTION)[keyof typeof PROVISION_ACTION];

/** the agents every provisioning-mode server has loaded */
export const PROVISIONING_MODE_AGENTS: readonly string[] = [PROVISION_AGENT, "choria_util", "discovery", RPCUTIL_AGENT];

/** statusmsg of a choria_provision request while another provisioner holds the node's lock */
export const LOCK_HELD_MESSAGE = "Could not obtain provisioning lock";
/** statusmsg of a choria_provision request with a token other than the node's */
export const WRONG_TOKEN_MESSAGE = "Incorrect provision token supplied";

/** actions after which the node restarts (or exits): its next startup event is expected */
export const PROVISION_ACTIONS_RESTARTING: readonly ProvisionAction[] = [PROVISION_ACTION.restart, PROVISION_ACTION.release_update, PROVISION_ACTION.shutdown];
