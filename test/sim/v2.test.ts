/**
 * Protocol v2 nodes against the project's RpcClient over a real nats-server: a v2 fleet answers
 * only v2 requests (and a v1 fleet only v1), as a real server tied to its security provider does;
 * the ed25519 half of provisioning (gen25519 nonce, server JWT) runs end to end over v2.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { verify } from "node:crypto";
import type { NatsConnection } from "nats";
import { connectNats, RpcClient, RpcTimeoutError, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { newNonce, signServerJwt, verifyGen25519 } from "../../src/credentials/index.js";
import { REGISTRATION_SUBJECT, decodeRegistration, ksuidSeconds } from "../../src/protocol/index.js";
import { configData } from "./helpers.js";
import { edPair, makeJwt, nowS } from "../credentials/helpers.js";

const TOKEN = "v2-s3cret";
const signer = edPair();
const provisioningJwt = (claims: Record<string, unknown>) =>
  makeJwt({ alg: "EdDSA", typ: "JWT" }, { purpose: "choria_provisioning", cht: TOKEN, chu: "nats://broker:4222", exp: nowS() + 3600, ...claims }, signer.privateKey) + "\n";
const V2_JWT = provisioningJwt({ v2: true });
/** a client JWT for the caller field; a provisioning-mode server does not verify it, the schema needs it non-empty */
const CLIENT_JWT = makeJwt({ alg: "EdDSA", typ: "JWT" }, { purpose: "choria_client_id", callerid: "choria=provisioner.example.net", exp: nowS() + 3600 }, signer.privateKey);

let srv: LocalNatsServer;
let nc: NatsConnection;
let v2fleet: Fleet;
let v1fleet: Fleet;
let v2: RpcClient;
let v1: RpcClient;

before(async () => {
  srv = await startNatsServer();
  nc = await connectNats({ servers: srv.url });
  [v2fleet, v1fleet] = await Promise.all([
    startFleet({ servers: srv.url, nodes: 4, seed: 21, token: TOKEN, restartDelayMs: 30, provisioningJwt: V2_JWT, protocol: 2, domain: "v2.example.net", noResponders: false }),
    startFleet({ servers: srv.url, nodes: 3, seed: 22, token: TOKEN, restartDelayMs: 30, provisioningJwt: provisioningJwt({}), domain: "v1.example.net", noResponders: false }),
  ]);
  v2 = new RpcClient({ nc, identity: "provisioner.example.net", protocol: 2, callerJwt: CLIENT_JWT });
  v1 = new RpcClient({ nc, identity: "provisioner.example.net" });
  v2.start();
  v1.start();
});

after(async () => {
  await v2?.close();
  await v1?.close();
  await v2fleet?.stop();
  await v1fleet?.stop();
  await nc?.close();
  await srv?.stop();
});

describe("sim: protocol v2", () => {
  it("refuses to start v2 nodes without a provisioning JWT that says v2: true", async () => {
    await assert.rejects(startFleet({ servers: srv.url, nodes: 1, protocol: 2, provisioningJwt: provisioningJwt({}) }), /v2: true/);
    await assert.rejects(startFleet({ servers: srv.url, nodes: 1, protocol: 2 }), /v2: true/);
    assert.throws(() => new RpcClient({ nc, identity: "x", protocol: 2 }), /callerJwt/);
  });

  it("v2 nodes publish registration data as v2 requests carrying their provisioning JWT", async () => {
    const seen = new Map<string, ReturnType<typeof decodeRegistration>>();
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const sub = nc.subscribe(REGISTRATION_SUBJECT, {
      callback: (_e, m) => {
        const d = decodeRegistration(m.data);
        if (d.identity.endsWith(".reg.example.net")) seen.set(d.identity, d);
        if (seen.size === 2) done();
      },
    });
    await nc.flush();
    const fleet = await startFleet({ servers: srv.url, nodes: 2, seed: 23, token: TOKEN, provisioningJwt: V2_JWT, protocol: 2, domain: "reg.example.net", registration: { intervalMs: 500 } });
    try {
      await all;
      for (const d of seen.values()) {
        assert.equal(d.protocol, 2);
        assert.equal(d.replyTo, "dev.null");
        assert.equal((d.request as { secure: { caller: string } }).secure.caller, V2_JWT.trim());
        assert.equal(JSON.parse(d.content.toString()).identity, d.identity);
      }
    } finally {
      sub.unsubscribe();
      await fleet.stop();
    }
  });

  it("each client version discovers exactly the fleet of its own version", async () => {
    const [found2, found1] = await Promise.all([v2.discover({ timeoutMs: 2000 }), v1.discover({ timeoutMs: 2000 })]);
    assert.deepEqual(found2.sort(), [...v2fleet.identities].sort());
    assert.deepEqual(found1.sort(), [...v1fleet.identities].sort());
    // each broadcast was seen (and dropped) by the other fleet: one violation per fleet, not per node
    assert.equal(v2fleet.report().totals.violationsByKind.wrong_protocol, 1);
    assert.equal(v1fleet.report().totals.violationsByKind.wrong_protocol, 1);
  });

  it("a v1 request to a v2 node and a v2 request to a v1 node go unanswered, with the server's reason", async () => {
    const id2 = v2fleet.identities[3];
    const id1 = v1fleet.identities[2];
    await assert.rejects(v1.call(id2, "rpcutil", "inventory", {}, { timeoutMs: 700 }), RpcTimeoutError);
    await assert.rejects(v2.call(id1, "rpcutil", "inventory", {}, { timeoutMs: 700 }), RpcTimeoutError);
    const n2 = v2fleet.report().nodes.find((n) => n.identity === id2)!;
    const n1 = v1fleet.report().nodes.find((n) => n.identity === id1)!;
    assert.match(n2.violations.find((v) => v.kind === "wrong_protocol")!.detail, /choria:transport:1 .*ed25519\+jwt/);
    assert.match(n1.violations.find((v) => v.kind === "wrong_protocol")!.detail, /io\.choria\.protocol\.v2\.transport .*x509/);
    // the same calls in the right version are answered
    assert.equal((await v2.call(id2, "rpcutil", "inventory")).statuscode, 0);
    assert.equal((await v1.call(id1, "rpcutil", "inventory")).statuscode, 0);
  });

  it("provisions a v2 node: jwt, gen25519 with a KSUID nonce, inventory, configure with a server JWT, restart", async () => {
    const id = v2fleet.identities[0];
    const j = await v2.call<Record<string, string>>(id, "choria_provision", "jwt", { token: TOKEN });
    assert.equal(j.statuscode, 0, j.statusmsg);
    assert.equal(j.data.jwt, V2_JWT, "the raw file contents, untrimmed");
    assert.match(j.data.ecdh_public, /^[0-9a-f]{64}$/);

    const nonce = newNonce(2);
    assert.ok(ksuidSeconds(nonce), "v2 nonces are KSUIDs");
    const g = await v2.call<{ public_key: string; signature: string; directory: string }>(id, "choria_provision", "gen25519", { nonce, token: TOKEN });
    assert.equal(g.statuscode, 0, g.statusmsg);
    assert.ok(verifyGen25519(g.data, nonce));
    assert.ok(!verifyGen25519(g.data, newNonce(2)), "the signature covers exactly our nonce");

    const inv = await v2.call<{ agents: string[] }>(id, "rpcutil", "inventory");
    assert.ok(inv.data.agents.includes("choria_provision"));

    const sj = signServerJwt({ identity: id, publicKey: g.data.public_key }, signer.seedHex);
    const conf = await v2.call(id, "choria_provision", "configure", { ...configData(id, { token: TOKEN }), ssldir: "", server_jwt: sj.token });
    assert.equal(conf.statuscode, 0, conf.statusmsg);
    const restart = await v2.call(id, "choria_provision", "restart", { splay: 1, token: TOKEN });
    assert.equal(restart.statuscode, 0, restart.statusmsg);

    const r = await v2fleet.waitFor((rep) => rep.nodes.find((n) => n.identity === id)!.provisioned, 5000);
    const node = r.nodes.find((n) => n.identity === id)!;
    assert.deepEqual(node.violations, []);
    assert.equal(node.serverJwt, sj.token);
    assert.equal(node.ed25519Public, g.data.public_key);
    // the delivered token verifies with the signer's key: what a broker checks
    const [h, c, sig] = sj.token.split(".");
    assert.ok(verify(null, Buffer.from(`${h}.${c}`), signer.publicKey, Buffer.from(sig!, "base64url")));
  });

  it("a server JWT that names another node or another key is a violation", async () => {
    const id = v2fleet.identities[1];
    const g = await v2.call<{ public_key: string; signature: string }>(id, "choria_provision", "gen25519", { nonce: newNonce(2), token: TOKEN });
    const other = edPair();
    const wrongKey = signServerJwt({ identity: id, publicKey: other.pubHex }, signer.seedHex).token;
    const wrongId = signServerJwt({ identity: v2fleet.identities[2], publicKey: g.data.public_key }, signer.seedHex).token;
    for (const server_jwt of [wrongKey, wrongId]) {
      const r = await v2.call(id, "choria_provision", "configure", { ...configData(id, { token: TOKEN }), ssldir: "", server_jwt });
      assert.equal(r.statuscode, 0, "Go writes whatever it gets; the simulator records the problem");
    }
    const node = v2fleet.report().nodes.find((n) => n.identity === id)!;
    const details = node.violations.filter((v) => v.kind === "server_jwt_invalid").map((v) => v.detail);
    assert.ok(details.some((d) => /public_key is not the key/.test(d)), details.join("; "));
    assert.ok(details.some((d) => /identity is/.test(d)), details.join("; "));
  });
});
