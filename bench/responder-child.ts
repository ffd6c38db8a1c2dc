/**
 * A trivial Choria responder for the NATS request/reply bound: answers every directed request
 * on provisioning.node.> with statuscode 0 through the project's own v1 codec (decode the
 * request, encode a reply), and does nothing else. Its own process, like the fleet, so the
 * client side is measured as the provisioner would be.
 *
 * Two shapes: "ping" answers with an empty data object (the smallest messages there are);
 * "flow" answers each action of a provisioning with data of the size the simulated fleet
 * sends (an inventory with the fleet's facts, a real RSA-2048 CSR made once at start, the
 * configure/restart messages), so the bound is measured on this workload's messages, without
 * the node-side work (facts are made once per identity, CSRs once per process).
 *
 *   node --import tsx bench/responder-child.ts <nats-url> [ping|flow]     prints "ready" on IPC
 */
import "./orphan-exit.js";
import { connectNats } from "../src/transport/index.js";
import { PROVISIONING_COLLECTIVE, decodeRequest, encodeReply, encodeRpcReply, nodeSubject } from "../src/protocol/index.js";
import { createCsrPem } from "../src/sim/csr.js";
import { CURRENT_VERSION, generateFacts } from "../src/sim/facts.js";
import { KeyPool } from "../src/sim/keypool.js";
import { CONFIG_FILE, LOADED_AGENTS, SSL_DIR } from "../src/sim/runtime.js";

const prefix = nodeSubject("");
const shape = process.argv[3] === "flow" ? "flow" : "ping";
const nc = await connectNats({ servers: [process.argv[2]!], name: "bench-responder" });

const keys = shape === "flow" ? await KeyPool.create({ size: 4 }) : undefined;
const csrs = keys ? keys.keys.map((k, i) => ({ csr: createCsrPem({ cn: `node${i}.example.net` }, k.spkiDer, k.privateKey), public_key: k.pkcs1PublicPem, ssldir: SSL_DIR })) : [];
const inventories = new Map<string, Record<string, unknown>>();

function flowData(identity: string, action: string): Record<string, unknown> {
  switch (action) {
    case "inventory": {
      let inv = inventories.get(identity);
      if (!inv) {
        inv = { agents: [...LOADED_AGENTS], classes: [], collectives: [PROVISIONING_COLLECTIVE], data_plugins: [], facts: generateFacts(1, identity), machines: [], main_collective: PROVISIONING_COLLECTIVE, version: CURRENT_VERSION, upgradable: false };
        if (inventories.size < 100_000) inventories.set(identity, inv);
      }
      return inv;
    }
    case "gencsr":
      return csrs[identity.length % csrs.length]!;
    case "configure":
      return { message: `Wrote 12 lines to ${CONFIG_FILE}` };
    case "restart":
      return { message: "Restarting Choria Server after 1s" };
    default:
      return {};
  }
}

let cpu0 = process.cpuUsage();
let replies = 0;
nc.subscribe(`${prefix}>`, {
  callback: (err, msg) => {
    if (err) return;
    const identity = msg.subject.slice(prefix.length);
    const req = decodeRequest(msg.data);
    const body = JSON.parse(req.payload.toString("utf8")) as { action: string };
    const payload = encodeRpcReply({ action: body.action, statuscode: 0, statusmsg: "OK", data: shape === "flow" ? flowData(identity, body.action) : {} });
    if (req.replyTo) nc.publish(req.replyTo, encodeReply({ requestId: req.request.envelope.requestid, agent: req.request.envelope.agent, senderid: identity, payload }));
    replies++;
  },
});
await nc.flush();
process.on("message", (m: { type: string }) => {
  if (m.type === "reset") {
    cpu0 = process.cpuUsage();
    replies = 0;
  } else if (m.type === "report") {
    const c = process.cpuUsage(cpu0);
    process.send?.({ type: "report", replies, cpuS: (c.user + c.system) / 1e6 });
  } else if (m.type === "stop") {
    void nc.close().then(() => process.exit(0));
  }
});
process.send?.({ type: "ready" });
