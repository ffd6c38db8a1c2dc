import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "nats";
import {
  StatusCode,
  broadcastSubject,
  decodeRequest,
  decodeRpcRequest,
  encodeReply,
  encodeRpcReply,
  nodeSubject,
} from "../../src/protocol/index.js";
import { ReplyWatch, RpcClient, RpcCancelledError, RpcClosedError, RpcNoRespondersError, RpcTimeoutError, closeNats, connectNats, startNatsServer, type LocalNatsServer, type RejectedReply } from "../../src/transport/index.js";
import { endOfTurnPublisher } from "../../src/transport/publish-batch.js";

let srv: LocalNatsServer;
before(async () => {
  srv = await startNatsServer();
});
after(async () => {
  await srv.stop();
});

/** A minimal in-test responder: answers discovery and rpcutil#inventory for one identity. */
async function responder(identity: string, o: { tamper?: boolean; impersonate?: string; silent?: boolean } = {}) {
  const nc = await connectNats({ servers: srv.url, name: identity });
  const seen: string[] = [];
  const handle = (data: Uint8Array) => {
    const req = decodeRequest(data);
    seen.push(req.request.envelope.agent);
    if (o.silent || !req.replyTo) return;
    const env = req.request.envelope;
    const payload = env.agent === "discovery" ? "pong" : (() => {
      const body = decodeRpcRequest(req.payload);
      return encodeRpcReply({ action: body.action, statuscode: StatusCode.OK, statusmsg: "OK", data: { identity, echo: body.data } });
    })();
    let bytes = encodeReply({ requestId: env.requestid, agent: env.agent, senderid: o.impersonate ?? identity, payload });
    if (o.tamper) {
      const t = JSON.parse(Buffer.from(bytes).toString());
      const s = JSON.parse(Buffer.from(t.data, "base64").toString());
      s.hash = Buffer.alloc(32).toString("base64");
      t.data = Buffer.from(JSON.stringify(s)).toString("base64");
      bytes = Buffer.from(JSON.stringify(t));
    }
    nc.publish(req.replyTo, bytes);
  };
  nc.subscribe(broadcastSubject("discovery"), { callback: (_e, m) => handle(m.data) });
  nc.subscribe(nodeSubject(identity), { callback: (_e, m) => handle(m.data) });
  await nc.flush();
  return { nc, seen };
}

async function client(extra: Partial<ConstructorParameters<typeof RpcClient>[0]> = {}) {
  const nc = await connectNats({ servers: srv.url, name: "provisioner" });
  const c = new RpcClient({ nc, identity: "provisioner.example.net", ...extra });
  c.start();
  await nc.flush();
  return { nc, c };
}

test("broadcast discovery collects every responder and a directed RPC reaches exactly one", async () => {
  const nodes = await Promise.all(["n1.example.net", "n2.example.net", "n3.example.net"].map((i) => responder(i)));
  const { nc, c } = await client();
  const seenLive: string[] = [];
  const found = await c.discover({ timeoutMs: 3000, quietMs: 200, onNode: (i) => seenLive.push(i) });
  assert.deepEqual(found.sort(), ["n1.example.net", "n2.example.net", "n3.example.net"]);
  assert.deepEqual(seenLive.sort(), found.sort());

  const r = await c.call<{ identity: string; echo: Record<string, unknown> }>("n2.example.net", "rpcutil", "inventory", { x: 1 }, { timeoutMs: 2000 });
  assert.equal(r.statuscode, StatusCode.OK);
  assert.equal(r.data.identity, "n2.example.net");
  assert.deepEqual(r.data.echo, { x: 1 });
  assert.deepEqual(nodes[0].seen, ["discovery"]);
  assert.deepEqual(nodes[1].seen, ["discovery", "rpcutil"]);
  assert.equal(c.inFlight, 0);
  await c.close();
  await closeNats(nc);
  for (const n of nodes) await closeNats(n.nc);
});

test("a call to a node that is subscribed but does not answer times out with a typed error and leaves nothing behind", async () => {
  const silent = await responder("mute.example.net", { silent: true });
  const { nc, c } = await client();
  await assert.rejects(c.call("mute.example.net", "rpcutil", "inventory", {}, { timeoutMs: 150 }), RpcTimeoutError);
  assert.equal(c.inFlight, 0);
  await c.close();
  await closeNats(nc);
  await closeNats(silent.nc);
});

test("a call to a node nobody is subscribed for fails at once with the broker's no-responders status, not a timeout", async () => {
  const { nc, c } = await client();
  // the timeout is far beyond the test's own limit: only the broker's 503 can settle the call in time
  await assert.rejects(c.call("ghost.example.net", "rpcutil", "inventory", {}, { timeoutMs: 600_000 }), RpcNoRespondersError);
  assert.equal(c.inFlight, 0);
  // and a node that is there still answers through the same reply subscription
  const live = await responder("live.example.net");
  const r = await c.call<{ identity: string }>("live.example.net", "rpcutil", "inventory", {}, { timeoutMs: 5000 });
  assert.equal(r.data.identity, "live.example.net");
  await c.close();
  await closeNats(nc);
  await closeNats(live.nc);
});

test("calls can be cancelled, and closing the client settles pending calls", async () => {
  const silent = await responder("quiet.example.net", { silent: true });
  const { nc, c } = await client();
  const ac = new AbortController();
  // one signal shared by several calls (a node's whole flow shares one), one of them already settled
  await assert.rejects(c.call("quiet.example.net", "rpcutil", "ping", {}, { timeoutMs: 50, signal: ac.signal }), RpcTimeoutError);
  const p = c.call("quiet.example.net", "rpcutil", "inventory", {}, { timeoutMs: 60_000, signal: ac.signal });
  const p2 = c.call("quiet.example.net", "rpcutil", "ping", {}, { timeoutMs: 60_000, signal: ac.signal });
  assert.equal(c.inFlight, 2);
  ac.abort();
  await assert.rejects(p, RpcCancelledError);
  await assert.rejects(p2, RpcCancelledError);
  assert.equal(c.inFlight, 0);
  // an already aborted signal fails a new call at once
  await assert.rejects(c.call("quiet.example.net", "rpcutil", "ping", {}, { timeoutMs: 60_000, signal: ac.signal }), RpcCancelledError);
  const pending = c.call("quiet.example.net", "rpcutil", "inventory", {}, { timeoutMs: 60_000 });
  await c.close();
  await assert.rejects(pending, RpcClosedError);
  await closeNats(nc);
  await closeNats(silent.nc);
});

test("replies with a bad hash or from another identity are dropped and reported against the node asked", async () => {
  const bad = await responder("tamper.example.net", { tamper: true });
  const liar = await responder("liar.example.net", { impersonate: "someone.else" });
  const rejected: RejectedReply[] = [];
  const { nc, c } = await client({ onRejectedReply: (r) => rejected.push(r) });
  await assert.rejects(c.call("tamper.example.net", "rpcutil", "inventory", {}, { timeoutMs: 300 }), RpcTimeoutError);
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].identity, "tamper.example.net");
  assert.equal(rejected[0].reason, "undecodable");
  assert.match(rejected[0].detail, /hash/);
  await assert.rejects(c.call("liar.example.net", "rpcutil", "inventory", {}, { timeoutMs: 300 }), RpcTimeoutError);
  assert.deepEqual(rejected.slice(1).map((r) => [r.identity, r.reason, r.step]), [["liar.example.net", "wrong_sender", "rpcutil#inventory"]]);
  assert.match(rejected[1].detail, /someone\.else/);
  await c.close();
  await closeNats(nc);
  await closeNats(bad.nc);
  await closeNats(liar.nc);
});

test("the connection survives a broker restart and RPC works again afterwards", async () => {
  const own = await startNatsServer();
  const statuses: string[] = [];
  const nc: NatsConnection = await connectNats({ servers: own.url, reconnectWaitMs: 100, onStatus: (t) => statuses.push(t) });
  const node = await connectNats({ servers: own.url, reconnectWaitMs: 100 });
  const c = new RpcClient({ nc, identity: "provisioner.example.net" });
  c.start();
  node.subscribe(nodeSubject("n9.example.net"), {
    callback: (_e, m) => {
      const req = decodeRequest(m.data);
      node.publish(req.replyTo!, encodeReply({ requestId: req.request.envelope.requestid, agent: "rpcutil", senderid: "n9.example.net", payload: encodeRpcReply({ action: "ping", statuscode: 0, statusmsg: "OK", data: {} }) }));
    },
  });
  await node.flush();
  assert.equal((await c.call("n9.example.net", "rpcutil", "ping", {}, { timeoutMs: 2000 })).statuscode, 0);
  // listen for reconnection before the restart so the event cannot be missed (events, not sleeps)
  const reconnected = async (conn: NatsConnection) => {
    for await (const s of conn.status()) if (s.type === "reconnect") return;
  };
  const both = Promise.all([reconnected(nc), reconnected(node)]);
  await own.restart();
  await both;
  await node.flush();
  assert.equal((await c.call("n9.example.net", "rpcutil", "ping", {}, { timeoutMs: 2000 })).statuscode, 0);
  assert.ok(statuses.includes("disconnect"));
  await c.close();
  await closeNats(nc);
  await closeNats(node);
  await own.stop();
});

test("end-of-turn publisher: a turn's messages arrive in order, a long turn releases them every maxBatch, and one queued before a drain goes to its error handler, not up the stack", async () => {
  const pub = endOfTurnPublisher();
  const sender = await connectNats({ servers: srv.url, name: "batch-sender" });
  const receiver = await connectNats({ servers: srv.url, name: "batch-receiver" });
  const got: string[] = [];
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  receiver.subscribe("batch.test", { callback: (_e, m) => {
    got.push(new TextDecoder().decode(m.data));
    if (got.length === 5) resolveAll();
  } });
  await receiver.flush();
  const noError = (e: Error) => assert.fail(`unexpected publish error: ${e.message}`);
  for (let i = 0; i < 5; i++) pub(sender, "batch.test", `m${i}`, noError);
  assert.deepEqual(got, [], "nothing is sent before the turn ends");
  await all;
  assert.deepEqual(got, ["m0", "m1", "m2", "m3", "m4"]);

  // a long turn hands every maxBatch messages to the connection at once instead of holding all
  const capped = endOfTurnPublisher(4);
  const before = sender.stats().outMsgs;
  for (let i = 0; i < 10; i++) capped(sender, "batch.cap", `c${i}`, noError);
  assert.equal(sender.stats().outMsgs - before, 8, "two full batches released within the turn");
  await new Promise((r) => setImmediate(r));
  assert.equal(sender.stats().outMsgs - before, 10, "the rest at the end of the turn");
  assert.throws(() => endOfTurnPublisher(0), RangeError);

  const errors: Error[] = [];
  pub(sender, "batch.test", "late", (e) => errors.push(e));
  const drained = sender.drain();
  await new Promise((r) => setImmediate(r));
  assert.equal(errors.length, 1, "the publish that met the drain was reported to its handler");
  await drained;
  await closeNats(receiver);
});

test("a second reply to a request is seen by the node's watch after the call resolved; discovery reports a second pong", async () => {
  const a = await responder("twin.example.net");
  const b = await responder("twin.example.net");
  const dup: string[] = [];
  const { nc, c } = await client();
  const found = await c.discover({ timeoutMs: 3000, quietMs: 200, onDuplicate: (i) => dup.push(i) });
  assert.deepEqual(found, ["twin.example.net"]);
  assert.deepEqual(dup, ["twin.example.net"]);

  const watch = new ReplyWatch("twin.example.net");
  const r = await c.call("twin.example.net", "rpcutil", "inventory", {}, { timeoutMs: 2000, watch });
  assert.equal(r.statuscode, StatusCode.OK);
  await waitUntil(() => watch.conflict !== undefined);
  assert.deepEqual({ step: watch.conflict!.step, kind: watch.conflict!.kind }, { step: "rpcutil#inventory", kind: "second_reply" });
  assert.equal(c.inFlight, 1, "the answered request stays routed to the watch");
  watch.close();
  assert.equal(c.inFlight, 0, "closing the watch forgets it");

  // without a watch the request is forgotten at once, as before
  await c.call("twin.example.net", "rpcutil", "inventory", {}, { timeoutMs: 2000 });
  assert.equal(c.inFlight, 0);
  await c.close();
  await closeNats(nc);
  await closeNats(a.nc);
  await closeNats(b.nc);
});

test("a forged reply does not win: the call takes the valid one and the watch records invalid plus valid", async () => {
  const forger = await responder("genuine.example.net", { tamper: true });
  const genuine = await responder("genuine.example.net");
  const rejected: RejectedReply[] = [];
  const { nc, c } = await client({ onRejectedReply: (r) => rejected.push(r) });
  const watch = new ReplyWatch("genuine.example.net");
  const r = await c.call<{ identity: string }>("genuine.example.net", "rpcutil", "inventory", {}, { timeoutMs: 2000, watch });
  assert.equal(r.data.identity, "genuine.example.net");
  await waitUntil(() => watch.conflict !== undefined);
  assert.equal(watch.conflict!.kind, "invalid_and_valid");
  assert.deepEqual(watch.rejects, [{ step: "rpcutil#inventory", reason: "undecodable" }]);
  assert.deepEqual(rejected.map((x) => x.identity), ["genuine.example.net"]);
  watch.close();
  await c.close();
  await closeNats(nc);
  await closeNats(forger.nc);
  await closeNats(genuine.nc);
});

/** polls a condition set by NATS callbacks, which have no event of their own to await */
async function waitUntil(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
