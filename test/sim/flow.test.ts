/**
 * The whole per-node provisioning flow against the simulator over a real nats-server, driven
 * by the project's RpcClient as a provisioner would: discover, inventory, gencsr, configure
 * with a certificate signed here, restart; the node leaves and says so with lifecycle events.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, verify, webcrypto } from "node:crypto";
import type { NatsConnection } from "nats";
import { connectNats, RpcClient, RpcNoRespondersError, RpcTimeoutError, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, type Fleet, CONFIG_FILE, LOCKED_ERROR, TOKEN_ERROR, Mode } from "../../src/sim/index.js";
import { CALLER, LifecycleLog, configData, csrInfo, ev, keyObjectOfPkcs1Pem, signCsr } from "./helpers.js";
import { makeTestCa, type TestCa } from "../helpers/ca.js";

const TOKEN = "s3cret";
const JWT = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJjaHQiOiJzM2NyZXQiLCJjaHUiOiJuYXRzOi8vYnJva2VyOjQyMjIiLCJwdXJwb3NlIjoiY2hvcmlhX3Byb3Zpc2lvbmluZyJ9.c2ln\n";

let srv: LocalNatsServer;
let nc: NatsConnection;
let fleet: Fleet;
let client: RpcClient;
let log: LifecycleLog;
let ca: TestCa;

type Data = Record<string, any>;

async function provisionCert(identity: string): Promise<{ csr: string; cert: string }> {
  const r = await client.call<Data>(identity, "choria_provision", "gencsr", { token: TOKEN, cn: identity });
  assert.equal(r.statuscode, 0, r.statusmsg);
  return { csr: r.data.csr, cert: await signCsr(ca, r.data.csr) };
}

before(async () => {
  srv = await startNatsServer();
  nc = await connectNats({ servers: srv.url });
  log = new LifecycleLog(nc);
  await nc.flush();
  [fleet, ca] = await Promise.all([startFleet({ servers: srv.url, nodes: 8, seed: 11, token: TOKEN, restartDelayMs: 40, provisioningJwt: JWT, connections: 2 }), makeTestCa()]);
  client = new RpcClient({ nc, identity: "provisioner.example.net" });
  client.start();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await nc?.close();
  await srv?.stop();
});

describe("sim: provisioning flow", () => {
  it("publishes a CloudEvents startup event per node and answers discovery", async () => {
    for (const id of fleet.identities) await log.next(ev("startup", id));
    const first = log.seen.find((e) => e.type === "startup")!;
    assert.equal(first.subject, "choria.lifecycle.event.startup.provision_mode_server");
    assert.equal(first.format, "cloudevent");
    assert.equal(first.raw.source, "io.choria.lifecycle");
    assert.match(String(first.event.version), /^0\.2[89]\.\d$/);
    const found = await client.discover({ timeoutMs: 3000 });
    assert.deepEqual([...found].sort(), [...fleet.identities].sort());
  });

  it("inventory has Go's fields, order and realistic facts", async () => {
    const id = fleet.identities[0];
    const r = await client.call<Data>(id, "rpcutil", "inventory");
    assert.equal(r.statuscode, 0);
    assert.deepEqual(Object.keys(r.data), ["agents", "classes", "collectives", "data_plugins", "facts", "machines", "main_collective", "version", "upgradable"]);
    assert.deepEqual(r.data.agents, ["choria_provision", "choria_util", "discovery", "rpcutil"]);
    assert.deepEqual(r.data.collectives, ["provisioning"]);
    const f = r.data.facts;
    for (const k of ["country", "dc", "role", "environment", "os", "hardware", "network"]) assert.ok(k in f, `fact ${k}`);
    assert.match(f.network.ip, /^10\.\d+\.\d+\.\d+$/);
    // deterministic: a second fleet with the same seed would report the same facts, and so does a second call
    const again = await client.call<Data>(id, "rpcutil", "inventory");
    assert.deepEqual(again.data.facts, f);
    const fact = await client.call<Data>(id, "rpcutil", "get_fact", { fact: "os.family" });
    assert.deepEqual(fact.data, { fact: "os.family", value: f.os.family });
  });

  it("gencsr returns a real SHA256withRSA CSR with C/L/O/OU (ST ignored), the PKCS#1 public key and ssldir", async () => {
    const id = fleet.identities[1];
    const r = await client.call<Data>(id, "choria_provision", "gencsr", { token: TOKEN, cn: id, C: "NL", L: "Amsterdam", O: "Example", OU: "Ops", ST: "Noord-Holland" });
    assert.equal(r.statuscode, 0, r.statusmsg);
    assert.deepEqual(Object.keys(r.data), ["csr", "public_key", "ssldir"]);
    assert.equal(r.data.ssldir, "/etc/choria/ssl");
    const info = csrInfo(r.data.csr);
    assert.equal(info.subject, `C=NL, L=Amsterdam, O=Example, OU=Ops, CN=${id}`);
    assert.equal(await info.verify(), true);
    assert.equal(info.algorithm, "SHA-256");
    assert.match(r.data.public_key, /^-----BEGIN PUBLIC KEY-----\n/);
    const pub = keyObjectOfPkcs1Pem(r.data.public_key);
    assert.deepEqual(pub.export({ type: "spki", format: "der" }), info.spki);
    // the node keeps its key: a second CSR carries the same public key
    const again = await client.call<Data>(id, "choria_provision", "gencsr", { token: TOKEN });
    assert.deepEqual(csrInfo(again.data.csr).spki, info.spki);
    assert.equal(csrInfo(again.data.csr).subject, `CN=${id}`);
  });

  it("configure + restart: provisioned event, shutdown, startup as server, then silence", async () => {
    const id = fleet.identities[2];
    assert.equal((await client.call(id, "rpcutil", "inventory")).statuscode, 0);
    const { cert } = await provisionCert(id);
    const configured = new Promise((r) => fleet.events.once("configured", r));
    // its home is the test's broker: there it publishes its startup event as a server
    const reply = await client.call<Data>(id, "choria_provision", "configure", configData(id, { certificate: cert, ca: ca.pem, token: TOKEN, home: srv.url }));
    assert.deepEqual(reply, { action: "configure", statuscode: 0, statusmsg: "OK", data: { message: `Wrote 5 lines to ${CONFIG_FILE}` } });
    assert.equal(await configured, id);
    await log.next(ev("provisioned", id));

    const node = fleet.report().nodes.find((n) => n.identity === id)!;
    assert.deepEqual(node.violations, []);
    assert.equal(node.configureCount, 1);
    assert.equal(node.configuration?.identity, id);
    assert.equal(node.certificate?.subject, `CN=${id}`);
    assert.equal(node.certificate?.issuer, "CN=Sim Test CA");
    assert.match(node.certificate!.serial, /^[0-9A-F]+$/);

    const left = new Promise((r) => fleet.events.on("restarted", (who) => who === id && r(who)));
    const restart = await client.call<Data>(id, "choria_provision", "restart", { token: TOKEN, splay: 1 });
    assert.deepEqual(restart.data, { message: "Restarting Choria Server after 2s" });
    await log.next(ev("shutdown", id));
    await left;
    await log.next(ev("startup", id, "server"));
    const r = fleet.report();
    assert.equal(r.nodes.find((n) => n.identity === id)!.provisioned, true);
    assert.equal(r.nodes.find((n) => n.identity === id)!.home, srv.url);
    assert.equal(r.totals.arrived, 1);
    assert.equal(r.totals.provisioned, 1);

    const absentBefore = r.totals.toAbsentNodes;
    // a server out of provisioning mode is not subscribed on provisioning.node.<identity>
    await assert.rejects(client.call(id, "rpcutil", "ping", {}, { timeoutMs: 300 }), RpcNoRespondersError);
    assert.equal(fleet.report().totals.toAbsentNodes, absentBefore + 1);
    const found = await client.discover({ timeoutMs: 2000 });
    assert.ok(!found.includes(id), "a provisioned node no longer answers discovery");
  });

  it("the lock belongs to senderid.callerid for 2 minutes; other callers get the lock error", async () => {
    const id = fleet.identities[3];
    assert.equal((await client.call(id, "choria_provision", "gencsr", { token: TOKEN })).statuscode, 0);
    const other = new RpcClient({ nc, identity: "other.example.net" });
    other.start();
    try {
      const violated = fleet.waitFor((r) => (r.totals.violationsByKind.lock_held ?? 0) >= 1, 2000);
      for (const action of ["gencsr", "configure", "jwt", "gen25519", "release_update"]) {
        const r = await other.call(id, "choria_provision", action, { token: TOKEN });
        assert.deepEqual([r.statuscode, r.statusmsg], [1, LOCKED_ERROR], action);
      }
      await violated;
      // unlocked actions are not subject to it
      const rp = await other.call(id, "choria_provision", "reprovision", { token: TOKEN });
      assert.equal(rp.statusmsg, "Server is already in provisioning mode, cannot enable provisioning mode again");
      // same sender with a different callerid is a different key
      const sameSender = new RpcClient({ nc, identity: "provisioner.example.net", callerid: "choria=someone-else" });
      sameSender.start();
      assert.equal((await sameSender.call(id, "choria_provision", "jwt", { token: TOKEN })).statusmsg, LOCKED_ERROR);
      await sameSender.close();
      // the holder keeps going
      assert.equal((await client.call(id, "choria_provision", "jwt", { token: TOKEN })).statuscode, 0);
    } finally {
      await other.close();
    }
  });

  it("emits request and reply events with the node and its agent#action", async () => {
    const id = fleet.identities[5];
    const seen: string[] = [];
    const onReq = (identity: string, k: string): void => void seen.push(`request ${identity} ${k}`);
    const onRep = (identity: string, k: string): void => void seen.push(`reply ${identity} ${k}`);
    fleet.events.on("request", onReq);
    fleet.events.on("reply", onRep);
    try {
      await client.call(id, "rpcutil", "inventory");
      await client.call(id, "rpcutil", "ping");
      // only the target node speaks, once per request and once per reply
      assert.deepEqual(seen, [`request ${id} rpcutil#inventory`, `reply ${id} rpcutil#inventory`, `request ${id} rpcutil#ping`, `reply ${id} rpcutil#ping`]);
    } finally {
      fleet.events.off("request", onReq);
      fleet.events.off("reply", onRep);
    }
  });

  it("wrong token aborts every action with Go's text; unknown action is code 2; bad types are code 4", async () => {
    const id = fleet.identities[4];
    for (const action of ["gencsr", "configure", "jwt", "restart", "shutdown", "gen25519"]) {
      const r = await client.call(id, "choria_provision", action, { token: "wrong" });
      assert.deepEqual([r.action, r.statuscode, r.statusmsg, r.data], [action, 1, TOKEN_ERROR, {}], action);
    }
    const u = await client.call(id, "choria_provision", "frobnicate", { token: TOKEN });
    assert.deepEqual(u, { action: "frobnicate", statuscode: 2, statusmsg: "Unknown action frobnicate for agent choria_provision", data: {} });
    const ru = await client.call(id, "rpcutil", "nope");
    assert.equal(ru.statusmsg, "Unknown action nope for agent rpcutil");
    const bad = await client.call(id, "choria_provision", "restart", { token: TOKEN, splay: "soon" });
    assert.equal(bad.statuscode, 4);
    assert.equal(bad.statusmsg, "Could not parse request data for choria_provision#restart: json: cannot unmarshal string into Go struct field RestartRequest.splay of type int");
    const bad2 = await client.call(id, "choria_provision", "gencsr", { token: 5 });
    assert.equal(bad2.statusmsg, "Could not parse request data for choria_provision#gencsr: json: cannot unmarshal number into Go struct field CSRRequest.token of type string");
    const t = fleet.report().totals.violationsByKind;
    assert.ok(t.wrong_token >= 6 && t.unknown_action >= 2 && t.invalid_data >= 2, JSON.stringify(t));
  });

  it("jwt returns the file and a fresh X25519 key; configure decrypts a key delivered with it (§7.4)", async () => {
    const id = fleet.identities[5];
    const j = await client.call<Data>(id, "choria_provision", "jwt", { token: TOKEN });
    assert.deepEqual(Object.keys(j.data), ["jwt", "ecdh_public"]);
    assert.equal(j.data.jwt, JWT);
    assert.match(j.data.ecdh_public, /^[0-9a-f]{64}$/);
    const j2 = await client.call<Data>(id, "choria_provision", "jwt", { token: TOKEN });
    assert.notEqual(j2.data.ecdh_public, j.data.ecdh_public, "a new pair on every call");

    // provisioner side of the key transport, against the latest server key
    const mine = generateKeyPairSync("x25519");
    const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(j2.data.ecdh_public, "hex").toString("base64url") }, format: "jwk" });
    const secret = diffieHellman({ privateKey: mine.privateKey, publicKey: peer });
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const iv = randomBytes(16);
    let k = Buffer.alloc(0);
    let prev = Buffer.alloc(0);
    while (k.length < 32) {
      prev = createHash("md5").update(Buffer.concat([prev, secret, iv.subarray(0, 8)])).digest();
      k = Buffer.concat([k, prev]);
    }
    const c = createCipheriv("aes-256-cbc", k.subarray(0, 32), iv);
    const enc = Buffer.concat([c.update(rsa.privateKey.export({ type: "pkcs1", format: "der" })), c.final()]).toString("base64");
    const keyPem = `-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,${iv.toString("hex").toUpperCase()}\n\n${enc.match(/.{1,64}/g)!.join("\n")}\n-----END RSA PRIVATE KEY-----\n`;
    const cryptoKey = await webcrypto.subtle.importKey("spki", rsa.publicKey.export({ type: "spki", format: "der" }), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["verify"]);
    const { csr } = await provisionCert(id);
    const cert = await signCsr(ca, csr, { publicKey: cryptoKey });
    const ecdhPublic = Buffer.from(String(mine.publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
    const data = { ...configData(id, { certificate: cert, ca: ca.pem, token: TOKEN }), key: keyPem, ecdh_public: ecdhPublic };
    const r = await client.call(id, "choria_provision", "configure", data);
    assert.equal(r.statuscode, 0, r.statusmsg);
    assert.deepEqual(fleet.report().nodes.find((n) => n.identity === id)!.violations, [], "the certificate matches the delivered key, not the node's own");

    // without ecdh_public, and on a node that never ran jwt
    const noEcdh = await client.call(id, "choria_provision", "configure", { ...data, ecdh_public: "" });
    assert.equal(noEcdh.statusmsg, "EDCH Public Key not supplied while providing a private key");
    const fresh = fleet.identities[6];
    const noJwt = await client.call(fresh, "choria_provision", "configure", { ...configData(fresh, { certificate: cert, ca: ca.pem, token: TOKEN }), key: keyPem, ecdh_public: ecdhPublic });
    assert.equal(noJwt.statusmsg, "TLS Setup Failed: could not decrypt private key: private key not set");
  });

  it("gen25519 signs the nonce with a fresh ed25519 key", async () => {
    const id = fleet.identities[6];
    const r = await client.call<Data>(id, "choria_provision", "gen25519", { token: TOKEN, nonce: "0123456789abcdef0123456789abcdef" });
    assert.deepEqual(Object.keys(r.data), ["public_key", "directory", "signature"]);
    const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(r.data.public_key, "hex").toString("base64url") }, format: "jwk" });
    assert.equal(verify(null, Buffer.from("0123456789abcdef0123456789abcdef"), pub, Buffer.from(r.data.signature, "hex")), true);
    assert.equal(r.data.directory, "/etc/choria");
  });

  it("strict configure checks: wrong key, wrong name, wrong CA, bad config all recorded while the reply stays Go's", async () => {
    const id = fleet.identities[7];
    const { csr } = await provisionCert(id);
    const otherCa = await makeTestCa("CN=Other CA");
    const someoneElse = (await client.call<Data>(fleet.identities[6], "choria_provision", "gencsr", { token: TOKEN })).data.csr;
    const wrongKey = await signCsr(ca, someoneElse, { cn: id });
    const wrongName = await signCsr(ca, csr, { cn: "impostor.example.net" });
    const wrongCa = await signCsr(otherCa, csr);
    const before = fleet.report().nodes.find((n) => n.identity === id)!.violations.length;
    for (const cert of [wrongKey, wrongName, wrongCa]) {
      const r = await client.call(id, "choria_provision", "configure", configData(id, { certificate: cert, ca: ca.pem, token: TOKEN }));
      assert.equal(r.statuscode, 0, "Go writes whatever it gets");
    }
    const r = await client.call(id, "choria_provision", "configure", configData(id, { certificate: "not a cert", ca: ca.pem, token: TOKEN, config: { identity: "x.example.net", "plugin.choria.server.provision": "true" } }));
    assert.equal(r.statuscode, 0);
    const bad = await client.call(id, "choria_provision", "configure", configData(id, { token: TOKEN, config: '{"a":1}' }));
    assert.deepEqual([bad.statuscode, bad.statusmsg], [1, "Could not decode configuration data: json: cannot unmarshal number into Go value of type string"]);
    const empty = await client.call(id, "choria_provision", "configure", configData(id, { token: TOKEN, config: "" }));
    assert.equal(empty.statusmsg, "Did not receive any configuration to write, cannot write a empty configuration file");
    const node = fleet.report().nodes.find((n) => n.identity === id)!;
    const kinds = node.violations.slice(before).map((v) => v.kind);
    for (const k of ["certificate_key_mismatch", "certificate_identity_mismatch", "certificate_not_signed_by_ca", "certificate_not_pem", "config_provision_not_false", "config_identity_mismatch", "config_invalid", "config_empty"]) {
      assert.ok(kinds.includes(k), `${k} in ${kinds.join(",")}`);
    }
    assert.equal(node.configureCount, 4);
    assert.ok(fleet.report().totals.configuredMoreThanOnce >= 1);
    // the last accepted config enables provisioning: restart refuses
    const rs = await client.call(id, "choria_provision", "restart", { token: TOKEN, splay: 1 });
    assert.deepEqual([rs.statuscode, rs.statusmsg], [1, `Configuration ${CONFIG_FILE} enables provisioning, restart cannot continue`]);
  });

  it("restart without configure comes back in provisioning mode; shutdown leaves for good", async () => {
    const id = fleet.identities[0];
    const startups = log.count(ev("startup", id));
    const r = await client.call<Data>(id, "choria_provision", "restart", { token: TOKEN, splay: 0 });
    assert.match(r.data.message, /^Restarting Choria Server after (\d|1[01])s$/);
    // while restarting the agent mutex is held: choria_provision goes unanswered, rpcutil still answers
    await assert.rejects(client.call(id, "choria_provision", "jwt", { token: TOKEN }, { timeoutMs: 20 }), RpcTimeoutError);
    await log.next(ev("startup", id), 3000, startups + 1);
    assert.equal((await client.call(id, "rpcutil", "ping")).statuscode, 0);
    assert.ok(fleet.report().nodes.find((n) => n.identity === id)!.violations.some((v) => v.kind === "restart_without_configure"));

    const gone = new Promise((res) => fleet.events.on("shutdown", (who) => who === id && res(who)));
    const s = await client.call<Data>(id, "choria_provision", "shutdown", { token: TOKEN });
    assert.match(s.data.message, /^Shutting Choria Server down after \ds$/);
    await gone;
    await log.next(ev("shutdown", id), 3000, 2);
    const n = fleet.report().nodes.find((x) => x.identity === id)!;
    assert.equal(n.mode, Mode.Shutdown);
    assert.equal(fleet.report().totals.shutdown, 1);
  });

  it("release_update: refused without upgrades; otherwise upgraded event and back on the new version", async () => {
    // nodes 0 (shut down) and 2 (provisioned) no longer answer
    const candidates = fleet.identities.filter((_, i) => i !== 0 && i !== 2);
    const live = await Promise.all(candidates.map(async (id) => ({ id, r: await client.call<Data>(id, "rpcutil", "inventory") })));
    const up = live.find((x) => x.r.data.upgradable)?.id;
    const notUp = live.find((x) => !x.r.data.upgradable)?.id;
    assert.ok(up && notUp, "seed 11 gives both kinds among 8 nodes");
    const no = await client.call(notUp!, "choria_provision", "release_update", { token: TOKEN, repository: "https://repo.example.net", version: "0.30.0" });
    assert.equal(no.statusmsg, "Version updates is not enabled in the configuration");
    const badRepo = await client.call(up!, "choria_provision", "release_update", { token: TOKEN, repository: "ftp://x", version: "0.30.0" });
    assert.match(badRepo.statusmsg, /^Update to version 0\.30\.0 failed, release rolled back: /);
    const startups = log.count(ev("startup", up!));
    const ok = await client.call<Data>(up!, "choria_provision", "release_update", { token: TOKEN, repository: "https://repo.example.net", version: "0.30.0" });
    assert.deepEqual(ok.data, { message: "Restarting Choria Server after 2s" });
    const upgraded = await log.next(ev("upgraded", up!));
    assert.equal(upgraded.event.new_version, "0.30.0");
    const back = await log.next(ev("startup", up!), 3000, startups + 1);
    assert.equal(back.event.version, "0.30.0");
    assert.equal((await client.call<Data>(up!, "rpcutil", "inventory")).data.version, "0.30.0");
  });
});

void CALLER;

describe("sim: internal health", () => {
  it("never hit an internal error", () => {
    assert.equal(fleet.report().totals.violationsByKind.simulator_error, undefined, JSON.stringify(fleet.report().nodes.flatMap((n) => n.violations.filter((v) => v.kind === "simulator_error"))));
  });
});
