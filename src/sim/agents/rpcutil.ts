/** rpcutil (§4.3) as a provisioning-mode server answers it; inventory is what provisioners read. */
import { PROVISIONING_COLLECTIVE, lookupFact } from "../../protocol/index.js";
import type { RpcutilInventoryData } from "../../types/index.js";
import { hasFault } from "../faults.js";
import { decodeGoStruct, GoJsonError, type GoStruct } from "../gojson.js";
import type { SimNode } from "../node.js";
import { AGENT_TIMEOUT_S, CONFIG_FILE, LOADED_AGENTS, aborted, invalidData, ok, type ActionResult, type SimRuntime } from "../runtime.js";

export const RPCUTIL_ACTIONS: readonly string[] = ["agent_inventory", "collective_info", "daemon_stats", "get_config_item", "get_data", "get_fact", "get_facts", "inventory", "ping"];

const startedAt = Math.floor(Date.now() / 1000);

export function inventoryData(rt: SimRuntime, node: SimNode): Required<RpcutilInventoryData> {
  // Go field order: agents, classes, collectives, data_plugins, facts, machines, main_collective, version, upgradable
  return {
    agents: [...LOADED_AGENTS],
    classes: [],
    collectives: [PROVISIONING_COLLECTIVE],
    data_plugins: [],
    facts: rt.factsOf(node),
    machines: [],
    main_collective: PROVISIONING_COLLECTIVE,
    version: node.version,
    upgradable: node.upgradable,
  };
}

const getFact: GoStruct = { name: "GetFactRequest", qualified: "rpcutil.GetFactRequest", fields: { fact: "string" } };
const getFacts: GoStruct = { name: "GetFactsRequest", qualified: "rpcutil.GetFactsRequest", fields: { facts: "string" } };
const getConfigItem: GoStruct = { name: "GetConfigItemRequest", qualified: "rpcutil.GetConfigItemRequest", fields: { item: "string" } };

function parsed(rt: SimRuntime, node: SimNode, s: GoStruct, agent: string, action: string, data: unknown): Record<string, unknown> | ActionResult {
  try {
    return decodeGoStruct(s, data);
  } catch (e) {
    if (!(e instanceof GoJsonError)) throw e;
    rt.stats.violation(node, "invalid_data", `${action}: ${e.message}`);
    return invalidData(`Could not parse request data for ${agent}#${action}: ${e.message}`);
  }
}

export function runRpcutilAction(rt: SimRuntime, node: SimNode, action: string, data: unknown, agentInBody: string): ActionResult {
  switch (action) {
    case "inventory":
      return ok(inventoryData(rt, node), hasFault(node.faults, "die_after_inventory") ? () => rt.kill(node, "die_after_inventory") : undefined);
    case "ping":
      return ok({ pong: Math.floor(Date.now() / 1000) });
    case "collective_info":
      return ok({ main_collective: PROVISIONING_COLLECTIVE, collectives: [PROVISIONING_COLLECTIVE] });
    case "agent_inventory":
      return ok({
        agents: LOADED_AGENTS.map((a) => ({ agent: a, license: "Apache-2.0", author: "R.I.Pienaar <rip@devco.net>", timeout: AGENT_TIMEOUT_S[a], name: a, version: node.version, url: "https://choria.io", description: a })),
      });
    case "get_fact": {
      const a = parsed(rt, node, getFact, agentInBody, action, data);
      if ("statuscode" in a) return a as ActionResult;
      const v = lookupFact(rt.factsOf(node), a.fact as string);
      return ok({ fact: a.fact, value: v === undefined ? null : v });
    }
    case "get_facts": {
      const a = parsed(rt, node, getFacts, agentInBody, action, data);
      if ("statuscode" in a) return a as ActionResult;
      const facts = rt.factsOf(node);
      const values: Record<string, unknown> = {};
      for (const f of String(a.facts).split(",").map((x) => x.trim()).filter(Boolean)) values[f] = lookupFact(facts, f) ?? null;
      return ok({ values });
    }
    case "get_config_item": {
      const a = parsed(rt, node, getConfigItem, agentInBody, action, data);
      if ("statuscode" in a) return a as ActionResult;
      const items: Record<string, string> = { identity: node.identity, main_collective: PROVISIONING_COLLECTIVE, collectives: PROVISIONING_COLLECTIVE, "plugin.choria.server.provision": "true" };
      const item = String(a.item);
      return item in items ? ok({ item, value: items[item] }) : aborted("Unknown key");
    }
    case "daemon_stats": {
      const t = rt.stats.totals;
      return ok({
        agents: [...LOADED_AGENTS],
        configfile: CONFIG_FILE,
        filtered: 0,
        pid: process.pid,
        passed: 0,
        threads: 1,
        replies: t.replies,
        starttime: startedAt,
        ttlexpired: 0,
        events: 0,
        times: { cstime: 0, cutime: 0, stime: 0, utime: 0 },
        total: 0,
        unvalidated: 0,
        validated: 0,
        version: node.version,
      });
    }
    case "get_data":
      return aborted("No data plugins are available in provisioning mode");
    default:
      throw new Error(`unhandled rpcutil action ${action}`);
  }
}
