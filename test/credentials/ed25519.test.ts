import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import {
  CredentialConfigError,
  ServerJwtError,
  ksuidTime,
  newNonce,
  signServerJwt,
  verifyGen25519,
} from "../../src/credentials/index.js";
import { readFileSync } from "node:fs";
import { decodePart, edPair, makeJwt, nowS, rsaPair } from "./helpers.js";

const YEAR = 365 * 24 * 3600;

/** a real go-choria server's gen25519 reply (test/fixtures/real-choria), and the nonce it was asked to sign */
const REAL_GEN25519 = JSON.parse(readFileSync("test/fixtures/real-choria/choria_provision-gen25519.reply.json", "utf8")).body.data;
const REAL_GEN25519_NONCE = "fidelity-nonce";

/** Plain node:crypto check of a compact JWS, independent of the code under test. */
function jwsVerifies(token: string, key: KeyObject): boolean {
  const [h, p, s] = token.split(".") as [string, string, string];
  const alg = decodePart(token, 0).alg as string;
  return verify(alg === "EdDSA" ? null : `sha${alg.slice(2)}`, Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"));
}

function edPub(hex: string): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(hex, "hex").toString("base64url") }, format: "jwk" });
}

test("nonces: 32 lowercase hex for v1, a KSUID of now for v2, never repeated", () => {
  const a = newNonce();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(newNonce(1), a);
  const k = newNonce(2);
  assert.match(k, /^[0-9A-Za-z]{27}$/);
  assert.ok(Math.abs(ksuidTime(k)!.getTime() - Date.now()) < 2000);
});

test("a real server's gen25519 signature verifies over the request nonce, and nothing else does", () => {
  const nonce = REAL_GEN25519_NONCE;
  const reply = REAL_GEN25519 as { public_key: string; signature: string; directory: string };
  assert.equal(verifyGen25519(reply, nonce), true);
  assert.equal(verifyGen25519({ ...reply, public_key: reply.public_key.toUpperCase(), signature: reply.signature.toUpperCase() }, nonce), true, "Go's hex decoder takes either case");
  assert.equal(verifyGen25519(reply, newNonce()), false);
  assert.equal(verifyGen25519(reply, `${nonce} `), false);
  assert.equal(verifyGen25519({ ...reply, public_key: edPair().pubHex }, nonce), false);
  const sig = Buffer.from(reply.signature, "hex");
  sig[0] = (sig[0] ?? 0) ^ 1;
  assert.equal(verifyGen25519({ ...reply, signature: sig.toString("hex") }, nonce), false);
  for (const bad of [{ ...reply, public_key: "ab" }, { ...reply, signature: "zz".repeat(64) }, { ...reply, signature: "" }, {}, null]) {
    assert.equal(verifyGen25519(bad as never, nonce), false);
  }
  // a node signing our own nonce, end to end
  const node = edPair();
  const n = newNonce(2);
  assert.equal(verifyGen25519({ public_key: node.pubHex, signature: sign(null, Buffer.from(n), node.privateKey).toString("hex") }, n), true);
});

test("a server JWT carries the §7.3 claims in Go's order and verifies with the signing key", () => {
  const signer = edPair();
  const node = edPair();
  const now = new Date(1_800_000_000_500);
  const { token, claims, alg, warnings } = signServerJwt({ identity: "n1.example.net", publicKey: node.pubHex }, signer.seedHex, { now });
  assert.equal(alg, "EdDSA");
  assert.deepEqual(warnings, []);
  assert.deepEqual(decodePart(token, 0), { alg: "EdDSA", typ: "JWT" });
  assert.ok(jwsVerifies(token, signer.publicKey));
  assert.ok(!jwsVerifies(token, node.publicKey));
  const c = decodePart(token, 1);
  assert.deepEqual(c, claims);
  assert.deepEqual(Object.keys(c), ["identity", "collectives", "ou", "purpose", "public_key", "iss", "exp", "nbf", "iat", "jti"]);
  assert.equal(c.identity, "n1.example.net");
  assert.deepEqual(c.collectives, ["mcollective"]);
  assert.equal(c.ou, "choria");
  assert.equal(c.purpose, "choria_server");
  assert.equal(c.public_key, node.pubHex);
  assert.equal(c.iss, "Choria Provisioner");
  assert.equal(c.iat, 1_800_000_000);
  assert.equal(c.nbf, 1_800_000_000);
  assert.equal(c.exp, 1_800_000_000 + YEAR);
  assert.equal(ksuidTime(String(c.jti))!.getTime(), Number(c.iat) * 1000, "the jti KSUID embeds iat");
  // tampering breaks it
  const [h, , s] = token.split(".");
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...c, identity: "other" })).toString("base64url")}.${s}`;
  assert.ok(!jwsVerifies(forged, signer.publicKey));
});

test("collectives, ou, permissions and pub_subjects follow configuration and server_claims", () => {
  const signer = edPair();
  const pk = edPair().pubHex;
  const sign1 = (configuration: Record<string, string>, serverClaims?: object) => signServerJwt({ identity: "n1", publicKey: pk, configuration, serverClaims: serverClaims as never }, signer.seedHex).claims;
  assert.deepEqual(sign1({ "plugin.security.provider": "choria" }).collectives, ["choria"]);
  assert.deepEqual(sign1({ "plugin.security.provider": "file" }).collectives, ["mcollective"]);
  assert.deepEqual(sign1({ "plugin.security.provider": "choria", collectives: "a,b" }).collectives, ["a", "b"]);
  assert.deepEqual(sign1({ collectives: "a,b" }, { collectives: ["x"] }).collectives, ["x"]);
  assert.deepEqual(sign1({ collectives: "a" }, { collectives: [] }).collectives, ["a"], "an empty list does not override");
  const c = sign1({}, { ou: "acme", pub_subjects: ["custom.>"], permissions: { submission: true, streams: false, governor: true, service_host: true, other: true } });
  assert.equal(c.ou, "acme");
  assert.deepEqual(c.pub_subjects, ["custom.>"]);
  assert.deepEqual(c.permissions, { submission: true, governor: true, service_host: true });
  assert.deepEqual(Object.keys(c).slice(0, 5), ["identity", "collectives", "permissions", "ou", "pub_subjects"]);
  assert.deepEqual(sign1({}, { permissions: {} }).permissions, {}, "a given but empty permissions object stays, as Go marshals it");
  assert.throws(() => sign1({}, { collectives: "x" }), ServerJwtError);
  assert.throws(() => sign1({}, { permissions: { streams: "yes" } }), ServerJwtError);
  assert.throws(() => sign1({ collectives: "a,,b" }), ServerJwtError);
});

test("expiry: server_claims.exp wins unless the result is one hour or less, then server_jwt_validity", () => {
  const signer = edPair();
  const pk = edPair().pubHex;
  const now = new Date(1_800_000_000_000);
  const at = (exp: number | undefined, validity?: number) => signServerJwt({ identity: "n1", publicKey: pk, serverClaims: exp === undefined ? null : { exp } }, signer.seedHex, { now, validity });
  assert.equal(at(1_800_000_000 + 7200).claims.exp, 1_800_000_000 + 7200);
  const short = at(1_800_000_000 + 3600);
  assert.equal(short.claims.exp, 1_800_000_000 + YEAR, "exactly one hour falls back");
  assert.match(short.warnings[0]!, /too short/);
  assert.equal(at(1_700_000_000).claims.exp, 1_800_000_000 + YEAR, "a past exp falls back");
  assert.equal(at(undefined, 30 * 24 * 3600 * 1000).claims.exp, 1_800_000_000 + 30 * 24 * 3600);
  // a too-short server_jwt_validity itself is used anyway (Go only falls back to it)
  assert.equal(at(undefined, 60_000).claims.exp, 1_800_000_000 + 60);
  assert.throws(() => at(undefined, 0), CredentialConfigError);
});

test("RSA and ed25519 PEM signing keys work too; bad keys and inputs are refused", () => {
  const pk = edPair().pubHex;
  const rsa = rsaPair();
  const r = signServerJwt({ identity: "n1", publicKey: pk }, rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString());
  assert.equal(r.alg, "RS256");
  assert.ok(jwsVerifies(r.token, rsa.publicKey));
  const ed = edPair();
  const e = signServerJwt({ identity: "n1", publicKey: pk }, ed.privateKey.export({ type: "pkcs8", format: "pem" }).toString());
  assert.equal(e.alg, "EdDSA");
  assert.ok(jwsVerifies(e.token, ed.publicKey));
  assert.ok(jwsVerifies(signServerJwt({ identity: "n1", publicKey: pk }, `${ed.seedHex}\n`).token, ed.publicKey), "seed files end in a newline");
  assert.throws(() => signServerJwt({ identity: "n1", publicKey: pk }, "nothex"), CredentialConfigError);
  assert.throws(() => signServerJwt({ identity: "n1", publicKey: pk }, "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----"), CredentialConfigError);
  assert.throws(() => signServerJwt({ identity: "", publicKey: pk }, ed.seedHex), ServerJwtError);
  assert.throws(() => signServerJwt({ identity: "n1", publicKey: "abc" }, ed.seedHex), ServerJwtError);
});

/** An Organization Issuer and a chain issuer (e.g. the provisioner's own client JWT) it signed. */
function orgAndChainIssuer(chainExp: number, extra: Record<string, unknown> = {}) {
  const org = edPair();
  const chain = edPair();
  const jti = "2Q1xWQbQ4ZkZ3Y7bJqLZ3x9C8nM"; // any id without '.'
  const tcs = sign(null, Buffer.from(`${jti}.${chain.pubHex}`), org.privateKey).toString("hex");
  const claims = { purpose: "choria_client_id", callerid: "choria=provisioner", tcs, public_key: chain.pubHex, iss: `I-${org.pubHex}`, exp: chainExp, nbf: nowS(), iat: nowS(), jti, ...extra };
  return { org, chain, jti, tcs, token: makeJwt({ alg: "EdDSA", typ: "JWT" }, claims, org.privateKey) };
}

/** What a broker does for a C- issued token (tokens.IsSignedByIssuer), with node:crypto only. */
function verifyChained(token: string, orgPub: KeyObject): boolean {
  const c = decodePart(token, 1);
  const [id, pkHex] = String(c.iss).replace(/^C-/, "").split(".") as [string, string];
  const [chainTcs, sigHex] = String(c.tcs).split(".") as [string, string];
  const orgOk = verify(null, Buffer.from(`${id}.${pkHex}`), orgPub, Buffer.from(chainTcs, "hex"));
  const chainOk = verify(null, Buffer.from(`${c.jti}.${chainTcs}`), edPub(pkHex), Buffer.from(sigHex, "hex"));
  return orgOk && chainOk && jwsVerifies(token, edPub(pkHex)) && ksuidTime(c.jti)!.getTime() === c.iat * 1000;
}

test("chaining to an Organization Issuer: iss, issexp, tcs and exp capped by the issuer", () => {
  const chainExp = nowS() + 30 * 24 * 3600;
  const { org, chain, jti, tcs, token: chainToken } = orgAndChainIssuer(chainExp);
  const node = edPair();
  const r = signServerJwt({ identity: "n1.example.net", publicKey: node.pubHex }, chain.seedHex, { chainToken });
  const c = decodePart(r.token, 1);
  assert.equal(c.iss, `C-${jti}.${chain.pubHex}`);
  assert.equal(c.issexp, chainExp);
  assert.equal(c.exp, chainExp, "a year is capped at the issuer's 30 days");
  assert.match(c.tcs, new RegExp(`^${tcs}\\.[0-9a-f]{128}$`));
  assert.deepEqual(Object.keys(c), ["identity", "collectives", "ou", "purpose", "tcs", "public_key", "issexp", "iss", "exp", "nbf", "iat", "jti"]);
  assert.ok(verifyChained(r.token, org.publicKey));
  assert.ok(!verifyChained(r.token, edPair().publicKey), "another org does not accept it");
  // explicit issuerSeed equal to the signing key is the same thing
  assert.ok(verifyChained(signServerJwt({ identity: "n1", publicKey: node.pubHex }, chain.seedHex, { chainToken, issuerSeed: chain.seedHex }).token, org.publicKey));
  // a longer-lived issuer does not stretch a short validity
  const long = orgAndChainIssuer(nowS() + 10 * YEAR);
  const r2 = signServerJwt({ identity: "n1", publicKey: node.pubHex }, long.chain.seedHex, { chainToken: long.token, now: new Date(nowS() * 1000) });
  assert.equal(decodePart(r2.token, 1).exp, nowS() + YEAR);
});

test("chain tokens that cannot produce a valid chain are refused", () => {
  const node = edPair();
  const ok = orgAndChainIssuer(nowS() + 3600 * 48);
  const attempt = (token: string, key = ok.chain.seedHex, issuerSeed?: string) => () => signServerJwt({ identity: "n1", publicKey: node.pubHex }, key, { chainToken: token, issuerSeed });
  // each broken issuer signs with its own chain key, so only the broken property is wrong
  const broken = (exp: number, extra: Record<string, unknown> = {}) => {
    const b = orgAndChainIssuer(exp, extra);
    return attempt(b.token, b.chain.seedHex);
  };
  assert.throws(broken(nowS() + 3600, { tcs: "" }), /Trust Chain Signature/);
  assert.throws(broken(nowS() + 3600, { purpose: "choria_server" }), /client id token/);
  assert.throws(broken(nowS() + 3600, { exp: undefined }), /expiry/);
  assert.throws(broken(nowS() + 3600, { jti: "a.b" }), /contains a '\.'/);
  assert.throws(broken(nowS() - 10), /expired/);
  assert.throws(attempt(ok.token, edPair().seedHex), /does not belong/);
  assert.throws(attempt(ok.token, rsaPair().privateKey.export({ type: "pkcs1", format: "pem" }).toString()), /ed25519/);
  assert.throws(attempt(ok.token, edPair().seedHex, ok.chain.seedHex), /chain issuer's ed25519 key/);
  assert.throws(attempt("not.a.jwt"), CredentialConfigError);
});

test("credential KSUIDs use the same format as protocol v2 ids (reference vector and cross-parse)", async () => {
  const { ksuidFromBytes, newKsuid } = await import("../../src/credentials/index.js");
  const { ksuidSeconds, encodeKsuid } = await import("../../src/protocol/index.js");
  assert.equal(ksuidFromBytes(Buffer.from("0669F7EFB5A1CD34B5F99D1154FB6853345C9735", "hex")), "0ujtsYcgvSTl8PAuAdqWYSMnLOv");
  assert.equal(ksuidTime("0ujtsYcgvSTl8PAuAdqWYSMnLOv")!.getTime(), (107608047 + 1_400_000_000) * 1000);
  const raw = Buffer.from(Array.from({ length: 20 }, (_, i) => i * 13));
  assert.equal(ksuidFromBytes(raw), encodeKsuid(raw));
  const at = new Date(1_800_000_000_000);
  assert.equal(ksuidSeconds(newKsuid(at)), 1_800_000_000);
  assert.throws(() => newKsuid(new Date(0)), RangeError);
});
