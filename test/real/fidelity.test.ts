/**
 * Simulator fidelity: the same requests, sent through our RpcClient, to a real go-choria server in
 * provisioning mode and to a simulated node (src/sim) on the same broker. Their replies must agree
 * field by field: the RPC body's names, types and field order, the status code, the status
 * message (once the values that must differ, such as paths, splays and keys, are normalised), and
 * the wire layers (transport, secure reply, reply) by name, type and order. A request one side
 * leaves unanswered must be unanswered by the other.
 *
 * With CHORIA_RECORD_FIXTURES=<dir> the real server's replies and lifecycle events are also written
 * there: test/fixtures/real-choria/ was recorded that way (see its README).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection, Subscription } from "nats";
import { emptyFilter, encodeRequest, encodeRpcRequest, nodeSubject, replyPrefix, type RpcReplyBody } from "../../src/protocol/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { closeNats, connectNats, RpcClient, RpcTimeoutError, startNatsServer } from "../../src/transport/index.js";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Waiters } from "../helpers/waiters.js";
import { REAL_SKIP, RealLab, TOKEN, type RealServer } from "../helpers/real-choria.js";

const RECORD = process.env.CHORIA_RECORD_FIXTURES;
/** how long a side that stays silent is given: the agents' own timeouts are 2 s (rpcutil) to 20 s */
const SILENT_MS = 3000;

let lab: RealLab;
let fleet: Fleet;
let nc: NatsConnection;
let simNc: NatsConnection;
/** one client per broker, with the same identity: the real servers' and the simulator's */
let client: RpcClient;
let simClient: RpcClient;
const captures: Subscription[] = [];
/** raw replies on our reply subjects, by request id */
const raw = new Map<string, { sender: string; data: Uint8Array }[]>();
const arrived = new Waiters();
/** the latest lifecycle event of each subject, from the real servers' broker and the simulator's */
const lifecycle = { real: new Map<string, unknown>(), sim: new Map<string, unknown>() };
const rawFrom = (identity: string) => [...raw.values()].flat().filter((r) => r.sender === identity).at(-1);
let realA: RealServer;
let realB: RealServer;
let simA: string;
let simB: string;

before(async () => {
  if (REAL_SKIP) return;
  lab = await RealLab.start({ home: false });
  const prov = await lab.provisioningConnection();
  lab.onStop(() => closeNats(prov));
  const startups = new Set<string>();
  let seen: () => void = () => undefined;
  prov.subscribe("choria.lifecycle.event.>", {
    callback: (_e, m) => {
      const ev = JSON.parse(new TextDecoder().decode(m.data)) as { data?: { identity?: string } };
      if (ev.data?.identity) startups.add(ev.data.identity);
      if (RECORD && !startups.has(`recorded:${m.subject}`)) {
        startups.add(`recorded:${m.subject}`);
        record(`lifecycle.${m.subject.split(".").slice(3).join("-")}.json`, { subject: m.subject, payload: ev });
      }
      seen();
    },
  });
  await prov.flush();
  realA = lab.startServer("real-a.fidelity.example.net");
  realB = lab.startServer("real-b.fidelity.example.net");
  // the simulator speaks plain NATS (a fleet has no TLS settings): its own broker, same requests
  const simBroker = await startNatsServer();
  lab.onStop(() => simBroker.stop());
  const simEvents = await connectNats({ servers: simBroker.url, name: "fidelity-sim-events" });
  lab.onStop(() => closeNats(simEvents));
  for (const [conn, into] of [[prov, lifecycle.real], [simEvents, lifecycle.sim]] as const) {
    conn.subscribe("choria.lifecycle.event.>", { callback: (_e, m) => void into.set(m.subject, JSON.parse(new TextDecoder().decode(m.data))) });
    await conn.flush();
  }
  fleet = await startFleet({ servers: simBroker.url, nodes: 2, token: TOKEN, domain: "fidelity.example.net", upgradable: false, keyPoolSize: 2, provisioningJwt: await import("node:fs").then((f) => f.readFileSync(lab.jwt, "utf8")), restartDelayMs: 500 });
  lab.onStop(() => fleet.stop());
  [simA, simB] = fleet.identities as [string, string];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`real servers not up after 30 s: ${realA.log()}`)), 30_000);
    seen = () => {
      if (startups.has(realA.identity) && startups.has(realB.identity)) {
        clearTimeout(t);
        resolve();
      }
    };
    seen();
  });
  nc = await lab.provisioningConnection();
  lab.onStop(() => closeNats(nc));
  simNc = await connectNats({ servers: simBroker.url, name: "fidelity-sim" });
  lab.onStop(() => closeNats(simNc));
  client = new RpcClient({ nc, identity: "fidelity.tester" });
  simClient = new RpcClient({ nc: simNc, identity: "fidelity.tester" });
  for (const [c, conn] of [[client, nc], [simClient, simNc]] as const) {
    c.start();
    lab.onStop(() => c.close());
    captures.push(
      conn.subscribe(`${replyPrefix(c.callerid)}.>`, {
        callback: (_e, m) => {
          const id = m.subject.slice(m.subject.lastIndexOf(".") + 1);
          const sender = (JSON.parse(new TextDecoder().decode(m.data)) as { headers?: { mc_sender?: string } }).headers?.mc_sender ?? "";
          raw.set(id, [...(raw.get(id) ?? []), { sender, data: m.data }]);
          arrived.notify();
        },
      }),
    );
    await conn.flush();
  }
});

after(async () => {
  for (const c of captures) c.unsubscribe();
  await lab?.stop();
});

function record(name: string, doc: unknown): void {
  if (!RECORD) return;
  mkdirSync(RECORD, { recursive: true });
  writeFileSync(join(RECORD, name), JSON.stringify(doc, null, 2) + "\n");
}

/** A JSON value's shape: names and their order, types, array element shapes; no values. */
export function shape(v: unknown): unknown {
  if (v === null) return "null";
  if (Array.isArray(v)) return ["array", ...[...new Set(v.map((x) => JSON.stringify(shape(x))))].map((s) => JSON.parse(s) as unknown)];
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

/** an inventory's facts are the node's own (a real server in a lab has none): only their type counts */
function bodyShape(body: RpcReplyBody): unknown {
  const s = shape(body) as { data?: Record<string, unknown> };
  if (body.action === "inventory" && s.data && typeof s.data.facts === "object") s.data.facts = "object";
  return s;
}

const b64json = (s: string): any => JSON.parse(Buffer.from(s, "base64").toString("utf8"));

/** the three wire layers of a v1 reply, as shapes, with the layers' fixed values kept */
function wireShape(data: Uint8Array): unknown {
  const transport = JSON.parse(new TextDecoder().decode(data)) as { protocol: string; data: string; headers: Record<string, unknown> };
  const secure = b64json(transport.data) as { protocol: string; message: string; hash: string };
  const reply = JSON.parse(secure.message) as { protocol: string; message: string; envelope: Record<string, unknown> };
  return {
    transport: { protocol: transport.protocol, shape: shape(transport) },
    secure: { protocol: secure.protocol, shape: shape(secure) },
    reply: { protocol: reply.protocol, shape: shape(reply), agent: reply.envelope.agent },
  };
}

type Seen = { kind: "silent" } | { kind: "reply"; body: RpcReplyBody; wire: unknown; raw: Uint8Array };

/** the values that must differ between a real server and a simulated one, made equal */
function normalise(msg: string, s: RealServer | string): string {
  const dir = typeof s === "string" ? "/etc/choria" : s.dir;
  return msg.split(dir).join("<configdir>").replace(/after \d+s/, "after <splay>s");
}

async function ask(identity: string, agent: string, action: string, data: Record<string, unknown>): Promise<Seen> {
  try {
    const body = await (identity === simA || identity === simB ? simClient : client).call(identity, agent, action, data, { timeoutMs: SILENT_MS + (agent === "choria_provision" ? 5000 : 0) });
    // our capture and the client's subscription see the same reply, in either order
    const hit = await arrived.until(() => rawFrom(identity) !== undefined, () => rawFrom(identity)!, 5000, () => new Error(`no raw reply from ${identity}`));
    return { kind: "reply", body, wire: wireShape(hit.data), raw: hit.data };
  } catch (e) {
    if (e instanceof RpcTimeoutError) return { kind: "silent" };
    throw e;
  }
}

/** asks both, asserts they agree, returns the pair for further checks */
async function same(label: string, agent: string, action: string, data: Record<string, unknown>, pair: "A" | "B" = "A"): Promise<{ real: Seen; sim: Seen }> {
  const realS = pair === "A" ? realA : realB;
  const simId = pair === "A" ? simA : simB;
  raw.clear();
  const [real, sim] = await Promise.all([ask(realS.identity, agent, action, data), ask(simId, agent, action, data)]);
  assert.equal(sim.kind, real.kind, `${label}: the real server ${real.kind === "silent" ? "did not answer" : "answered"}, the simulator ${sim.kind === "silent" ? "did not" : "did"}`);
  if (real.kind === "reply" && sim.kind === "reply") {
    record(`${agent}-${label}.reply.json`, { transport: JSON.parse(new TextDecoder().decode(real.raw)), body: real.body });
    assert.equal(sim.body.statuscode, real.body.statuscode, `${label}: statuscode (real: ${real.body.statusmsg})`);
    assert.equal(normalise(sim.body.statusmsg, simId), normalise(real.body.statusmsg, realS), `${label}: statusmsg`);
    assert.deepEqual(bodyShape(sim.body), bodyShape(real.body), `${label}: the reply body's names, types and order`);
    assert.deepEqual(sim.wire, real.wire, `${label}: the wire layers`);
  }
  return { real, sim };
}

const skip = REAL_SKIP;

test("discovery ping: both answer pong, with the same wire layers", { skip }, async () => {
  raw.clear();
  const found = (await Promise.all([client, simClient].map((c) => c.discover({ timeoutMs: 3000, quietMs: 1000 })))).flat();
  for (const id of [realA.identity, simA]) assert.ok(found.includes(id), `${id} answered discovery`);
  const replies = [...raw.values()].flat();
  const real = replies.find((r) => r.sender === realA.identity)!;
  const sim = replies.find((r) => r.sender === simA)!;
  record("discovery-ping.reply.json", { transport: JSON.parse(new TextDecoder().decode(real.data)) });
  assert.deepEqual(wireShape(sim.data), wireShape(real.data));
  const message = (d: Uint8Array): string => JSON.parse(b64json(JSON.parse(new TextDecoder().decode(d)).data).message).message;
  assert.equal(message(sim.data), message(real.data));
});

test("rpcutil: inventory, ping, collective_info, agent_inventory, get_config_item, an unknown action", { skip }, async () => {
  const inv = await same("inventory", "rpcutil", "inventory", {});
  if (inv.real.kind === "reply" && inv.sim.kind === "reply") {
    const r = inv.real.body.data as Record<string, unknown>;
    const s = inv.sim.body.data as Record<string, unknown>;
    for (const k of ["agents", "classes", "collectives", "data_plugins", "main_collective", "upgradable"]) assert.deepEqual(s[k], r[k], `inventory ${k}`);
  }
  await same("ping", "rpcutil", "ping", {});
  await same("collective_info", "rpcutil", "collective_info", {});
  await same("agent_inventory", "rpcutil", "agent_inventory", {});
  await same("get_config_item", "rpcutil", "get_config_item", { item: "identity" });
  await same("unknown-action", "rpcutil", "no_such_action", {});
});

test("choria_provision: wrong token, unknown action, gencsr, jwt, gen25519, release_update refused, reprovision", { skip }, async () => {
  await same("gencsr-wrong-token", "choria_provision", "gencsr", { token: "wrong", cn: "x" });
  await same("gencsr-no-token", "choria_provision", "gencsr", { cn: "x" });
  await same("unknown-action", "choria_provision", "no_such_action", { token: TOKEN });
  const csr = await same("gencsr", "choria_provision", "gencsr", { token: TOKEN, cn: "", C: "NL", L: "Amsterdam", O: "Example", OU: "ops", ST: "NH" });
  if (csr.real.kind === "reply" && csr.sim.kind === "reply") {
    // the CSR and keys as a provisioner reads them: subject order, key kind and size, PEM types, ssldir
    const facts = (b: RpcReplyBody, id: string, where: RealServer | string) => {
      const d = b.data as { csr: string; public_key: string; ssldir: string };
      const req = new x509.Pkcs10CertificateRequest(d.csr);
      const alg = req.publicKey.algorithm as { name: string; modulusLength?: number };
      return {
        subject: req.subject.split(id).join("<identity>"),
        key: `${alg.name}/${alg.modulusLength}`,
        signature: (req.signatureAlgorithm as { name: string; hash?: { name: string } }).hash?.name,
        csrPem: d.csr.split("\n")[0],
        publicKeyPem: d.public_key.split("\n")[0],
        ssldir: normalise(d.ssldir, where),
      };
    };
    assert.deepEqual(facts(csr.sim.body, simA, simA), facts(csr.real.body, realA.identity, realA));
  }
  const jwt = await same("jwt", "choria_provision", "jwt", { token: TOKEN });
  if (jwt.real.kind === "reply" && jwt.sim.kind === "reply") {
    const d = (b: RpcReplyBody) => b.data as { jwt: string; ecdh_public: string };
    assert.equal(d(jwt.sim.body).jwt, d(jwt.real.body).jwt, "both return the provisioning JWT file as it is");
    assert.equal(d(jwt.sim.body).ecdh_public.length, d(jwt.real.body).ecdh_public.length);
  }
  const ed = await same("gen25519", "choria_provision", "gen25519", { token: TOKEN, nonce: "fidelity-nonce" });
  if (ed.real.kind === "reply" && ed.sim.kind === "reply") {
    const d = (b: RpcReplyBody) => b.data as { public_key: string; directory: string; signature: string };
    assert.equal(normalise(d(ed.sim.body).directory, simA), normalise(d(ed.real.body).directory, realA));
    for (const k of ["public_key", "signature"] as const) assert.equal(d(ed.sim.body)[k].length, d(ed.real.body)[k].length, k);
  }
  await same("release_update-refused", "choria_provision", "release_update", { token: TOKEN, repository: "http://127.0.0.1:1/choria", version: "0.99.0" });
  await same("reprovision", "choria_provision", "reprovision", { token: TOKEN });
});

test("an unknown agent: neither answers, filtered (as our client sends it) or not", { skip }, async () => {
  await same("unknown-agent", "no_such_agent", "x", {});
  // without a filter the request reaches the server's agent lookup itself
  raw.clear();
  for (const [id, conn] of [[realA.identity, nc], [simA, simNc]] as const) {
    const enc = encodeRequest({ agent: "no_such_agent", payload: encodeRpcRequest("no_such_agent", "x"), callerid: client.callerid, senderid: client.identity, filter: emptyFilter() });
    conn.publish(nodeSubject(id), enc.bytes);
    await conn.flush();
  }
  // a silence has no event to wait for: a bounded wait, and then nothing may have arrived
  await new Promise((r) => setTimeout(r, SILENT_MS));
  assert.deepEqual([...raw.values()].flat().map((r) => r.sender), []);
});

test("choria_provision#configure: without token, wrong token, empty configuration, then a valid one; then restart", { skip }, async () => {
  await same("configure-no-token", "choria_provision", "configure", { config: JSON.stringify({ identity: "x" }) });
  await same("configure-wrong-token", "choria_provision", "configure", { token: "wrong", config: JSON.stringify({ identity: "x" }) });
  await same("configure-empty", "choria_provision", "configure", { token: TOKEN, config: "" });
  await same("configure-not-json", "choria_provision", "configure", { token: TOKEN, config: "not json" });
  // a valid configuration, the same for both; it points nowhere, as only the replies matter here
  const config = JSON.stringify({ "plugin.choria.server.provision": "false", "plugin.choria.middleware_hosts": "nats://127.0.0.1:1", loglevel: "info" });
  await same("configure", "choria_provision", "configure", { token: TOKEN, config });
  await same("restart-wrong-token", "choria_provision", "restart", { token: "wrong", splay: 1 });
  await same("restart", "choria_provision", "restart", { token: TOKEN, splay: 1 });
});

test("choria_provision#shutdown: the same reply, then the real process exits 0", { skip }, async () => {
  await same("shutdown-wrong-token", "choria_provision", "shutdown", { token: "wrong" }, "B");
  await same("shutdown", "choria_provision", "shutdown", { token: TOKEN }, "B");
  assert.deepEqual(await realB.exited, { code: 0, signal: null });
});

test("lifecycle events: startup, provisioned and shutdown have the same names, types and order", { skip }, async () => {
  for (const subject of ["choria.lifecycle.event.startup.provision_mode_server", "choria.lifecycle.event.provisioned.provision_mode_server", "choria.lifecycle.event.shutdown.provision_mode_server"]) {
    const real = lifecycle.real.get(subject);
    const sim = lifecycle.sim.get(subject);
    assert.ok(real && sim, `${subject}: real ${real ? "sent" : "did not send"} it, the simulator ${sim ? "did" : "did not"}`);
    assert.deepEqual(shape(sim), shape(real), subject);
    const fixed = (e: any) => ({ type: e.type, source: e.source, specversion: e.specversion, datacontenttype: e.datacontenttype, protocol: e.data?.protocol, component: e.data?.component });
    assert.deepEqual(fixed(sim), fixed(real), `${subject}: the fixed values`);
  }
});
