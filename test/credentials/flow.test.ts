/**
 * The credential steps of the per-node flow in isolation, with a scripted node on the other end
 * of RpcCaller: the cases a well-behaved simulator never produces (a signature over another
 * nonce, a jwt retried after a lost reply, a helper key that cannot be delivered).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { provisionNode, type FlowObserver, type FlowOptions } from "../../src/provision/flow.js";
import { defaultFlowOptions } from "../../src/provision/flow-options.js";
import type { CsrChecker, Decider } from "../../src/types/index.js";
import type { RpcCaller } from "../../src/provision/interfaces.js";
import { decryptKeyFromProvisioner, generateEcdhKeyPair, verifierFromEd25519Hex } from "../../src/credentials/index.js";
import { decisionFromHelper } from "../../src/policy/legacy-helper.js";
import type { Decision } from "../../src/types/index.js";
import type { RpcReplyBody } from "../../src/protocol/index.js";
import { RpcTimeoutError } from "../../src/transport/errors.js";
import { configureDecision } from "../helpers/decision.js";
import { edPair, makeJwt, nowS } from "./helpers.js";

const ID = "node1.example.net";
const signer = edPair();
const JWT = makeJwt({ alg: "EdDSA", typ: "JWT" }, { purpose: "choria_provisioning", cht: "tok", ou: "acme", exp: nowS() + 600 }, signer.privateKey);

type Handler = (action: string, data: Record<string, unknown>) => RpcReplyBody | "timeout";

function rpc(handler: Handler, calls: Array<{ action: string; data: Record<string, unknown> }>): RpcCaller {
  return {
    async call<T>(_identity: string, _agent: string, action: string, data: Record<string, unknown> = {}) {
      calls.push({ action, data });
      const r = handler(action, data);
      if (r === "timeout") throw new RpcTimeoutError(_identity, _agent, action, 1);
      return r as RpcReplyBody<T>;
    },
  };
}

const ok = (data: Record<string, unknown>): RpcReplyBody => ({ action: "", statuscode: 0, statusmsg: "OK", data });

const baseDecision = (extra: Partial<Decision> = {}): Decision => configureDecision(ID, extra);

const csr: CsrChecker = { inspect: () => ({ ok: false, code: "x", reason: "unused" }), check: () => ({ ok: false, code: "x", reason: "unused" }) };

function observer(refusals: string[]): FlowObserver {
  return { rpcTime() {}, rpcError() {}, policyEvaluated() {}, csrRefused() {}, signed() {}, signFailed() {}, lockHeld() {}, jwtRefused: (r) => refusals.push(r) };
}

function options(o: Partial<FlowOptions>): FlowOptions {
  const f = defaultFlowOptions();
  return { ...f, pki: false, token: "tok", backoff: { baseMs: 1, maxMs: 2 }, jwt: { verifier: () => verifierFromEd25519Hex(signer.pubHex) }, ...o };
}

const decider = (d: Decision, seen?: (ctx: Parameters<Decider["decide"]>[0]) => void): Decider => ({ ref: d.policy, decide: async (ctx) => (seen?.(ctx), d) });

test("gen25519 gets a fresh nonce on every try, and the signature must cover the nonce of the answered request", async () => {
  const node = generateKeyPairSync("ed25519");
  const pub = Buffer.from(String(node.publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
  let first = "";
  const calls: Array<{ action: string; data: Record<string, unknown> }> = [];
  const handler: Handler = (action, data) => {
    if (action === "jwt") return ok({ jwt: JWT, ecdh_public: generateEcdhKeyPair().publicHex });
    if (action === "gen25519") {
      // the first request goes unanswered; the second is answered with a signature over the FIRST nonce (a replay)
      if (!first) {
        first = String(data.nonce);
        return "timeout";
      }
      return ok({ public_key: pub, directory: "/etc/choria", signature: sign(null, Buffer.from(first), node.privateKey).toString("hex") });
    }
    throw new Error(`unexpected ${action}`);
  };
  const refusals: string[] = [];
  const seed = edPair().seedHex;
  const o = options({ ed25519: { signingKey: seed }, steps: { ...defaultFlowOptions().steps, gen25519: { tries: 5, timeoutMs: 100, maxTimeouts: 3 } } });
  const r = await provisionNode(ID, { rpc: rpc(handler, calls), decider: decider(baseDecision()), csr, observer: observer(refusals) }, o);
  const nonces = calls.filter((c) => c.action === "gen25519").map((c) => String(c.data.nonce));
  assert.equal(nonces.length, 2);
  assert.notEqual(nonces[0], nonces[1], "a new nonce per request");
  assert.match(nonces[0]!, /^[0-9a-f]{32}$/, "v1 nonces look like v1 request ids");
  assert.equal(r.record.outcome, "refused");
  assert.match(r.record.reason, /gen25519 signature/);
  assert.deepEqual(refusals, ["gen25519_signature"]);
  assert.ok(!calls.some((c) => c.action === "configure"));
});

test("a helper key is encrypted to the ECDH key of the node's latest jwt reply and decrypts there; the record holds no key", async () => {
  const nodeKeys: ReturnType<typeof generateEcdhKeyPair>[] = [];
  const calls: Array<{ action: string; data: Record<string, unknown> }> = [];
  let jwtCalls = 0;
  const handler: Handler = (action) => {
    if (action === "jwt") {
      const pair = generateEcdhKeyPair();
      nodeKeys.push(pair);
      // the first reply is lost after the node made its key: only the second key is current
      return ++jwtCalls === 1 ? "timeout" : ok({ jwt: JWT + "\n", ecdh_public: pair.publicHex });
    }
    if (action === "inventory") return ok({ agents: ["rpcutil"], facts: {} });
    return ok({ message: "done" });
  };
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = String(rsa.privateKey.export({ type: "pkcs8", format: "pem" }));
  const d = baseDecision({ suppliedTls: { certificatePem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", caPem: "ca", ssldir: "/etc/choria/ssl", keyPem } });
  let ctxClaims: Record<string, unknown> | undefined;
  const o = options({ steps: { ...defaultFlowOptions().steps, jwt: { tries: 3, timeoutMs: 100, maxTimeouts: 3 } } });
  const r = await provisionNode(ID, { rpc: rpc(handler, calls), decider: decider(d, (ctx) => (ctxClaims = ctx.jwtClaims)), csr, observer: observer([]) }, o);
  assert.equal(r.record.outcome, "configure", r.record.reason);
  const conf = calls.find((c) => c.action === "configure")!.data;
  assert.match(String(conf.key), /Proc-Type: 4,ENCRYPTED/);
  const clear = decryptKeyFromProvisioner(String(conf.key), nodeKeys[1]!.privateKey, String(conf.ecdh_public));
  assert.equal(clear, String(rsa.privateKey.export({ type: "pkcs1", format: "pem" })));
  assert.throws(() => decryptKeyFromProvisioner(String(conf.key), nodeKeys[0]!.privateKey, String(conf.ecdh_public)), "the stale key from the lost reply cannot decrypt it");
  // the decider (legacy helper) gets every claim, the record only the public ones
  assert.equal(ctxClaims?.cht, "tok");
  assert.equal(r.record.jwt?.cht, undefined);
  assert.equal(r.record.jwt?.ou, "acme");
  const recordText = JSON.stringify(r.record);
  assert.ok(!recordText.includes("PRIVATE KEY") && !recordText.includes(String(conf.key).split("\n")[4]!));
});

test("a key that cannot be delivered defers the node with a reason that names no key material", async () => {
  const calls: Array<{ action: string; data: Record<string, unknown> }> = [];
  const handler: Handler = (action) => (action === "jwt" ? ok({ jwt: JWT, ecdh_public: generateEcdhKeyPair().publicHex }) : ok({ agents: [], facts: {} }));
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keyPem = String(ec.privateKey.export({ type: "pkcs8", format: "pem" }));
  const d = baseDecision({ suppliedTls: { certificatePem: "c", caPem: "ca", keyPem } });
  const r = await provisionNode(ID, { rpc: rpc(handler, calls), decider: decider(d), csr, observer: observer([]) }, options({}));
  assert.equal(r.record.outcome, "defer");
  assert.match(r.record.reason, /cannot deliver the supplied private key: .*only RSA/);
  assert.ok(!r.record.reason.includes(keyPem.split("\n")[1]!));
  assert.ok(!calls.some((c) => c.action === "configure"));
});

test("an unusable jwt_verify_cert defers (our fault), an expired JWT is refused (the node's)", async () => {
  const handler: Handler = () => ok({ jwt: makeJwt({ alg: "EdDSA" }, { purpose: "choria_provisioning", exp: nowS() - 5 }, signer.privateKey), ecdh_public: "" });
  const refusals: string[] = [];
  const broken = await provisionNode(ID, { rpc: rpc(handler, []), decider: decider(baseDecision()), csr, observer: observer(refusals) }, options({ jwt: { verifier: () => { throw new Error("jwt_verify_cert file is garbage"); } } }));
  assert.equal(broken.record.outcome, "defer");
  assert.match(broken.record.reason, /cannot verify provisioning JWTs: jwt_verify_cert file is garbage/);
  const expired = await provisionNode(ID, { rpc: rpc(handler, []), decider: decider(baseDecision()), csr, observer: observer(refusals) }, options({}));
  assert.equal(expired.record.outcome, "refused");
  assert.match(expired.record.reason, /^provisioning JWT refused \(expired\)/);
  assert.deepEqual(refusals, ["expired"]);
  assert.ok(expired.holdMs > 0, "a refused node is held, it would send the same JWT again");
});

test("the legacy helper's server_claims become Decision.serverClaims", () => {
  const ref = { name: "helper:x", version: "1", hash: "sha256:1" };
  const d = decisionFromHelper({ configuration: { "plugin.choria.middleware_hosts": "nats://b:4222" }, server_claims: { ou: "acme", collectives: ["c1"], permissions: { streams: true } } }, ref, ID);
  assert.deepEqual(d.serverClaims, { ou: "acme", collectives: ["c1"], permissions: { streams: true } });
  assert.throws(() => decisionFromHelper({ server_claims: "nope" as never }, ref, ID), /server_claims is not an object/);
});
