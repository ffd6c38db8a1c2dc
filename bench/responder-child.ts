/**
 * A trivial Choria responder for the NATS request/reply bound: answers every directed request
 * on provisioning.node.> with statuscode 0 and an empty data object, through the project's
 * own v1 codec (decode the request, encode a reply), and does nothing else. Its own process,
 * like the fleet, so the client side is measured as the provisioner would be.
 *
 *   node --import tsx bench/responder-child.ts <nats-url>     prints "ready" on IPC
 */
import { connectNats } from "../src/transport/index.js";
import { decodeRequest, encodeReply, encodeRpcReply, nodeSubject } from "../src/protocol/index.js";

const prefix = nodeSubject("");
const nc = await connectNats({ servers: [process.argv[2]!], name: "bench-responder" });
let cpu0 = process.cpuUsage();
let replies = 0;
nc.subscribe(`${prefix}>`, {
  callback: (err, msg) => {
    if (err) return;
    const identity = msg.subject.slice(prefix.length);
    const req = decodeRequest(msg.data);
    const body = JSON.parse(req.payload.toString("utf8")) as { action: string };
    const payload = encodeRpcReply({ action: body.action, statuscode: 0, statusmsg: "OK", data: {} });
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
