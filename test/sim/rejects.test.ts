/**
 * Every kind of request a provisioning-mode server rejects. Dropped requests must get no
 * reply at all and be counted by kind; rejected RPCs get Go's status code and text. Absence
 * is proven without sleeping: wait for the violation counter, then a barrier request on the
 * same connection whose reply shows the node has moved on.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "nats";
import { connectNats, RpcClient, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { broadcastSubject, decodeReply, decodeRpcReply, encodeStdBase64, nodeSubject, unixSeconds, type RpcReplyBody } from "../../src/protocol/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { rawRequest, type RawRequest } from "./helpers.js";

let srv: LocalNatsServer;
let nc: NatsConnection;
let fleet: Fleet;
let client: RpcClient;
let target: string;

const count = (kind: string): number => fleet.report().totals.violationsByKind[kind] ?? 0;

function collect(replyTo: string): RpcReplyBody[] & { first: Promise<void> } {
  let arrived!: () => void;
  // `first` is not enumerable, so `got` still compares equal to a plain array of replies
  const got = Object.defineProperty([] as RpcReplyBody[], "first", { value: new Promise<void>((r) => (arrived = r)), enumerable: false }) as RpcReplyBody[] & { first: Promise<void> };
  nc.subscribe(replyTo, {
    max: 10,
    callback: (_e, m) => {
      const d = decodeReply(m.data);
      got.push(d.reply.message === "pong" ? { action: "", statuscode: 0, statusmsg: "pong", data: {} } : decodeRpcReply(d.reply.message));
      arrived();
    },
  });
  return got;
}

async function expectDropped(kind: string, bytes: Uint8Array, replyTo: string, subject = nodeSubject(target)): Promise<void> {
  const before = count(kind);
  const got = collect(replyTo);
  await nc.flush();
  nc.publish(subject, bytes);
  await fleet.waitFor((r) => (r.totals.violationsByKind[kind] ?? 0) > before, 3000);
  // barrier: published after the bad request on the same connection; once it is answered, any reply to the bad one would have arrived
  assert.equal((await client.call(target, "rpcutil", "ping")).statuscode, 0);
  await nc.flush();
  assert.deepEqual(got, [], `${kind}: no reply`);
  assert.equal(count(kind), before + 1, `${kind}: counted once`);
}

async function dropped(kind: string, r: RawRequest): Promise<void> {
  const req = rawRequest(r);
  await expectDropped(kind, req.bytes, req.replyTo);
}

async function answered(r: RawRequest): Promise<RpcReplyBody> {
  const req = rawRequest(r);
  const got = collect(req.replyTo);
  await nc.flush();
  nc.publish(nodeSubject(target), req.bytes);
  // the reply itself, not a barrier: like a Go server, the simulator may answer a later rpcutil
  // call first (gencsr signs on the thread pool, under the agent mutex)
  await Promise.race([got.first, new Promise((_, rej) => setTimeout(() => rej(new Error("no reply within 3 s")), 3000).unref())]);
  // then a barrier for a second reply to the same request, which must never come
  await client.call(target, "rpcutil", "ping");
  await nc.flush();
  assert.equal(got.length, 1, "exactly one reply");
  return got[0]!;
}

function transportWith(data: string): Uint8Array {
  return Buffer.from(JSON.stringify({ protocol: "choria:transport:1", data, headers: { "reply-to": "provisioning.reply.x.y", mc_sender: "p" } }));
}

before(async () => {
  srv = await startNatsServer();
  nc = await connectNats({ servers: srv.url });
  fleet = await startFleet({ servers: srv.url, nodes: 12, seed: 5, token: "t0ken", connections: 2 });
  target = fleet.identities[0];
  client = new RpcClient({ nc, identity: "provisioner.example.net" });
  client.start();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await nc?.close();
  await srv?.stop();
});

describe("sim: dropped requests get no reply and are counted by kind", () => {
  it("ttl below the schema minimum of 30", () => dropped("bad_ttl", { agent: "rpcutil", action: "ping", ttl: 10 }));
  it("expired: time at exactly now - ttl (the window is strict)", () => dropped("ttl_window", { agent: "rpcutil", action: "ping", ttl: 60, time: unixSeconds() - 60 }));
  it("from the future beyond the ttl", () => dropped("ttl_window", { agent: "rpcutil", action: "ping", ttl: 60, time: unixSeconds() + 120 }));
  it("wrong collective", () => dropped("wrong_collective", { agent: "rpcutil", action: "ping", collective: "mcollective" }));
  it("identity filter that does not match", () =>
    dropped("filter_mismatch", { agent: "rpcutil", action: "ping", filter: { fact: [], cf_class: [], agent: [], identity: ["other.example.net"], compound: [] } }));
  it("fact filter that does not match", () =>
    dropped("filter_mismatch", { agent: "rpcutil", action: "ping", filter: { fact: [{ fact: "country", operator: "==", value: "zz" }], cf_class: [], agent: [], identity: [], compound: [] } }));
  it("agent filter naming an agent that is not loaded", () =>
    dropped("filter_mismatch", { agent: "rpcutil", action: "ping", filter: { fact: [], cf_class: [], agent: ["puppet"], identity: [], compound: [] } }));
  it("dashed (36 character) request id", () => dropped("bad_request_id", { agent: "rpcutil", action: "ping", requestId: "a2f0ca71-7c69-4f20-86cf-a81b6c494648" }));
  it("garbage that is not JSON", async () => {
    await expectDropped("garbage", Buffer.from("hello, is this choria?"), "provisioning.reply.none.none");
    await expectDropped("garbage", Buffer.from(JSON.stringify({ protocol: "choria:transport:9", data: "", headers: {} })), "provisioning.reply.none.none");
  });
  it("transport data that is not base64", () => expectDropped("bad_base64", transportWith("!!not base64!!"), "provisioning.reply.x.y"));
  it("secure request failing its schema", () =>
    expectDropped("bad_secure_request", transportWith(encodeStdBase64(JSON.stringify({ protocol: "choria:secure:request:1", message: "", signature: "insecure", pubcert: "insecure" }))), "provisioning.reply.x.y"));
  // with Go's usual agent filter the filter check drops it first; an empty filter reaches the agent lookup
  it("agent that is not loaded", () => dropped("unknown_agent", { agent: "puppet", action: "status", filter: { fact: [], cf_class: [], agent: [], identity: [], compound: [] } }));
  it("discovery payload that is not ping (raw 'ping' decodes as base64 to garbage)", () => dropped("discovery_not_ping", { agent: "discovery", payload: "ping" }));
  it("no reply-to header: the request runs but nothing can be sent", async () => {
    const before = count("no_reply_to");
    const req = rawRequest({ agent: "rpcutil", action: "ping", noReplyTo: true });
    nc.publish(nodeSubject(target), req.bytes);
    await fleet.waitFor((r) => (r.totals.violationsByKind.no_reply_to ?? 0) === before + 1, 3000);
  });
  it("a matching fact filter is answered (control)", async () => {
    const facts = (await client.call<Record<string, any>>(target, "rpcutil", "inventory")).data.facts;
    const r = await answered({ agent: "rpcutil", action: "ping", filter: { fact: [{ fact: "country", operator: "==", value: facts.country }], cf_class: [], agent: ["rpcutil"], identity: ["/^sim-/"], compound: [] } });
    assert.equal(r.statuscode, 0);
  });
  it("a broadcast of garbage is one violation for the fleet, whatever the number of connections", async () => {
    const before = count("garbage");
    nc.publish(broadcastSubject("discovery"), Buffer.from("{not json"));
    await fleet.waitFor((r) => (r.totals.violationsByKind.garbage ?? 0) > before, 3000);
    // both connections have processed the garbage once they answer a discovery sent after it
    assert.equal((await client.discover({ timeoutMs: 3000 })).length, fleet.identities.length);
    assert.equal(count("garbage"), before + 1);
    assert.ok(fleet.report().unattributedViolations.some((v) => v.kind === "garbage"));
  });
  it("broadcast fact filters select nodes without counting violations", async () => {
    const before = fleet.report().totals.violations;
    const all = await Promise.all(fleet.identities.map(async (id) => ({ id, country: (await client.call<Record<string, any>>(id, "rpcutil", "inventory")).data.facts.country as string })));
    const nl = all.filter((x) => x.country === "nl").map((x) => x.id).sort();
    const found = await client.discover({ timeoutMs: 2000, filter: { fact: [{ fact: "country", operator: "==", value: "nl" }], cf_class: [], agent: ["choria_provision"], identity: [], compound: [] } });
    assert.deepEqual([...found].sort(), nl);
    assert.equal(fleet.report().totals.violations, before);
  });
});

describe("sim: rejected RPCs are answered with Go's codes", () => {
  it("a body that is not JSON is InvalidData with the parse error", async () => {
    const r = await answered({ agent: "choria_provision", payload: "<xml/>" });
    assert.deepEqual(r, { action: "", statuscode: 4, statusmsg: "Could not process request: could not parse incoming message as a MCollective SimpleRPC Request: invalid character '<' looking for beginning of value", data: {} });
  });
  it("data that is not an object is InvalidData naming the Go type", async () => {
    const r = await answered({ agent: "choria_provision", payload: JSON.stringify({ agent: "choria_provision", action: "restart", data: "now" }) });
    assert.equal(r.statusmsg, "Could not parse request data for choria_provision#restart: json: cannot unmarshal string into Go value of type provision.RestartRequest");
  });
  it("a base64 body is decoded first (§2.6)", async () => {
    const r = await answered({ agent: "rpcutil", payload: encodeStdBase64(JSON.stringify({ agent: "rpcutil", action: "collective_info", data: {} })) });
    assert.deepEqual(r.data, { main_collective: "provisioning", collectives: ["provisioning"] });
  });
  it("keys match case-insensitively and a float splay is InvalidData", async () => {
    const r = await answered({ agent: "choria_provision", action: "gencsr", data: { TOKEN: "t0ken", CN: target } });
    assert.equal(r.statuscode, 0);
    const f = await answered({ agent: "choria_provision", action: "restart", data: { token: "t0ken", splay: 1.5 } });
    assert.equal(f.statusmsg, "Could not parse request data for choria_provision#restart: json: cannot unmarshal number 1.5 into Go struct field RestartRequest.splay of type int");
  });
  it("a negative splay crashes the Go server: no reply, node gone", async () => {
    const victim = fleet.identities[1];
    const before = count("negative_splay");
    const req = rawRequest({ agent: "choria_provision", action: "restart", data: { token: "t0ken", splay: -1 } });
    const got = collect(req.replyTo);
    nc.publish(nodeSubject(victim), req.bytes);
    await fleet.waitFor((r) => (r.totals.violationsByKind.negative_splay ?? 0) > before && r.totals.dead >= 1, 3000);
    await assert.rejects(client.call(victim, "rpcutil", "ping", {}, { timeoutMs: 200 }));
    assert.deepEqual(got, []);
  });
  it("no internal errors", () => assert.equal(count("simulator_error"), 0));
});
