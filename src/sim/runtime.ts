/**
 * What agents and the dispatcher need from the fleet, as an interface so the agent modules
 * stay independent of how the fleet wires connections, timers and events.
 */
import { PROVISIONING_MODE_AGENTS, type StatusCode } from "../protocol/index.js";
import type { Facts } from "./facts.js";
import type { KeyPool } from "./keypool.js";
import type { SimNode } from "./node.js";
import type { FleetStats } from "./report.js";

export const CONFIG_FILE = "/etc/choria/server.conf";
export const CONFIG_DIR = "/etc/choria";
export const SSL_DIR = "/etc/choria/ssl";
export const LOADED_AGENTS: readonly string[] = PROVISIONING_MODE_AGENTS;
/** agent metadata timeouts in seconds: past them the Go server sends no reply */
export const AGENT_TIMEOUT_S: Record<string, number> = { choria_provision: 20, choria_util: 2, discovery: 2, rpcutil: 2 };

export interface SimRuntime {
  readonly seed: number;
  /** provisioning token (JWT cht); undefined means every token passes */
  readonly token: string | undefined;
  /** raw provisioning.jwt contents; undefined means the file does not exist */
  readonly provisioningJwt: string | undefined;
  /** the one protocol version every node of the fleet accepts (§3) */
  readonly protocol: 1 | 2;
  readonly keys: KeyPool;
  readonly stats: FleetStats;
  readonly nodes: readonly SimNode[];
  factsOf(node: SimNode): Facts;
  /** replaces the real splay wait when set (tests); the reply still states Go's value */
  readonly restartDelayMs: number | undefined;
  lifecycle(node: SimNode, type: "startup" | "shutdown" | "provisioned" | "upgraded" | "alive", component: string, extra?: { version?: string; new_version?: string }): void;
  /** restart accepted: shutdown event now, after delayMs the node either leaves or comes back in provisioning mode */
  restart(node: SimNode, delayMs: number, o?: { forceProvisioning?: boolean }): void;
  /** shutdown accepted: after delayMs a shutdown event and gone for good */
  shutdown(node: SimNode, delayMs: number): void;
  /** die_after_* faults and Go panics: silent, immediate */
  kill(node: SimNode, reason: string): void;
}

export interface EnvelopeInfo {
  requestid: string;
  senderid: string;
  callerid: string;
}

export interface ActionResult {
  statuscode: StatusCode;
  statusmsg: string;
  data: unknown;
  /** runs once the reply has been published (lifecycle side effects, faults) */
  after?: () => void;
  /** the Go server would not answer (it blocked or crashed) */
  noReply?: boolean;
}

export function ok(data: unknown, after?: () => void): ActionResult {
  return { statuscode: 0, statusmsg: "OK", data, after };
}

export function aborted(msg: string): ActionResult {
  return { statuscode: 1, statusmsg: msg, data: {} };
}

export function invalidData(msg: string): ActionResult {
  return { statuscode: 4, statusmsg: msg, data: {} };
}

export const NO_REPLY: ActionResult = { statuscode: 0, statusmsg: "", data: {}, noReply: true };
