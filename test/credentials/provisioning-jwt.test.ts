import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import {
  CredentialConfigError,
  JwtVerifyError,
  loadJwtVerifier,
  publicClaims,
  verifyProvisioningJwt,
} from "../../src/credentials/index.js";
import { edPair, makeJwt, nowS, rsaPair } from "./helpers.js";

// made by the real `choria jwt keys` / `choria jwt prov` (go-choria v0.30.2): see test/fixtures/README.md
const FX = "test/fixtures/provisioning-jwt";
const fx = (name: string): string => join(FX, name);
const rsToken = readFileSync(fx("rs256.jwt"), "utf8");
const rsPem = readFileSync(fx("rs256.signer-public.pem"), "utf8");
const edToken = readFileSync(fx("ed25519.jwt"), "utf8");
const edHex = readFileSync(fx("ed25519.signer-public.hex"), "utf8");
/** the fixtures are valid for a year from when they were made: they are checked a minute after it */
const claimsOf = (t: string): { iat: number; exp: number } => JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString());
const AT = new Date((claimsOf(rsToken).iat + 60) * 1000);
const ED_EXP = claimsOf(edToken).exp;

function rejects(fn: () => unknown, code: string, reason?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof JwtVerifyError, `expected JwtVerifyError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (reason) assert.match(e.reason, reason);
    return true;
  });
}

const base = () => ({ cht: "s3cret", chs: false, chu: "nats://b:4222", chpd: true, extensions: null, purpose: "choria_provisioning", iss: "test", sub: "choria_provisioning", iat: nowS() - 10, nbf: nowS() - 10, exp: nowS() + 3600 });

test("the real RS256 fixture verifies with its signer public key, from PEM text and from the file", () => {
  const r = verifyProvisioningJwt(rsToken, { pem: rsPem }, AT);
  assert.equal(r.alg, "RS256");
  assert.equal(r.claims.cht, "s3cret");
  assert.equal(r.claims.chu, "nats://localhost:4222");
  assert.equal(r.claims.ou, "choria", "Go defaults an empty ou to choria");
  const viaFile = verifyProvisioningJwt(rsToken, fx("rs256.signer-public.pem"), AT);
  assert.deepEqual(viaFile, r);
  // the node returns the file untrimmed; a trailing newline must not matter
  assert.equal(verifyProvisioningJwt(`${rsToken.trim()}\n`, { pem: rsPem }, AT).alg, "RS256");
});

test("the real ed25519 fixture verifies with its hex key, given as value, as file and as loaded verifier", () => {
  const r = verifyProvisioningJwt(edToken, { ed25519Hex: edHex }, AT);
  assert.equal(r.alg, "EdDSA");
  assert.equal(r.claims.iss, "Choria Tokens Package");
  assert.equal(r.claims.v2, true);
  assert.deepEqual(verifyProvisioningJwt(edToken, edHex.trim(), AT), r, "a non-path string is a hex key");
  const file = fx("ed25519.signer-public.hex");
  assert.deepEqual(verifyProvisioningJwt(edToken, file, AT), r);
  assert.deepEqual(verifyProvisioningJwt(edToken, loadJwtVerifier(file), AT), r);
  // at its exp, and one second past it, it must be refused
  rejects(() => verifyProvisioningJwt(edToken, edHex, new Date((ED_EXP + 1) * 1000)), "expired");
  rejects(() => verifyProvisioningJwt(edToken, edHex, new Date(ED_EXP * 1000)), "expired", new RegExp(String(new Date(ED_EXP * 1000).getUTCFullYear())));
});

test("tampered tokens fail the signature check", () => {
  const [h, p, s] = rsToken.trim().split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  claims.cht = "other";
  const forgedPayload = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
  rejects(() => verifyProvisioningJwt(forgedPayload, { pem: rsPem }), "bad_signature");
  const flipped = s[10] === "A" ? "B" : "A";
  rejects(() => verifyProvisioningJwt(`${h}.${p}.${s.slice(0, 10)}${flipped}${s.slice(11)}`, { pem: rsPem }), "bad_signature");
  const [eh, ep, es] = edToken.split(".") as [string, string, string];
  rejects(() => verifyProvisioningJwt(`${eh}.${ep}.${es.slice(0, -4)}AAAA`, edHex), "bad_signature");
  rejects(() => verifyProvisioningJwt(`${eh}.${ep}.`, edHex), "bad_signature");
});

test("a wrong key of the right kind, or a key of the wrong kind, is bad_signature", () => {
  rejects(() => verifyProvisioningJwt(rsToken, { pem: rsaPair().publicKey.export({ type: "spki", format: "pem" }).toString() }), "bad_signature", /does not verify/);
  rejects(() => verifyProvisioningJwt(edToken, edPair().pubHex), "bad_signature", /does not verify/);
  rejects(() => verifyProvisioningJwt(rsToken, edHex), "bad_signature", /RSA certificate or public key is required/);
  rejects(() => verifyProvisioningJwt(edToken, { pem: rsPem }), "bad_signature", /ed25519 public key is required/);
});

test("RS384 and RS512 verify; none, HS256 and ES256 are unsupported", () => {
  const { publicKey, privateKey } = rsaPair();
  const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
  for (const alg of ["RS384", "RS512"]) assert.equal(verifyProvisioningJwt(makeJwt({ alg, typ: "JWT" }, base(), privateKey), { pem }).alg, alg);
  const [, p] = makeJwt({ alg: "RS256", typ: "JWT" }, base(), privateKey).split(".");
  for (const alg of ["none", "HS256", "ES256", undefined]) {
    rejects(() => verifyProvisioningJwt(`${Buffer.from(JSON.stringify({ alg, typ: "JWT" })).toString("base64url")}.${p}.`, { pem }), "unsupported_alg");
  }
});

test("exp, nbf and purpose are enforced after the signature", () => {
  const { publicKey, privateKey } = edPair();
  const hex = Buffer.from(String(publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
  const tok = (c: Record<string, unknown>) => makeJwt({ alg: "EdDSA", typ: "JWT" }, c, privateKey);
  assert.equal(verifyProvisioningJwt(tok(base()), hex).claims.cht, "s3cret");
  rejects(() => verifyProvisioningJwt(tok({ ...base(), exp: nowS() - 1 }), hex), "expired");
  rejects(() => verifyProvisioningJwt(tok({ ...base(), nbf: nowS() + 120 }), hex), "not_yet_valid");
  // an explicit clock moves both ways
  const t = tok({ ...base(), nbf: 2_000_000_000, exp: 2_000_000_100 });
  rejects(() => verifyProvisioningJwt(t, hex, new Date(1_999_999_999_000)), "not_yet_valid");
  assert.ok(verifyProvisioningJwt(t, hex, new Date(2_000_000_050_000)));
  rejects(() => verifyProvisioningJwt(t, hex, new Date(2_000_000_100_000)), "expired");
  // purpose or sub is enough; neither is refused
  const { purpose: _p, ...noPurpose } = base();
  assert.ok(verifyProvisioningJwt(tok(noPurpose), hex));
  const { sub: _s, ...noSub } = base();
  assert.ok(verifyProvisioningJwt(tok(noSub), hex));
  rejects(() => verifyProvisioningJwt(tok({ ...noSub, purpose: "choria_server" }), hex), "not_provisioning", /choria_server/);
  rejects(() => verifyProvisioningJwt(tok({ ...noPurpose, sub: "someone" }), hex), "not_provisioning");
  // a forged expired token reports the signature, not the expiry
  const other = edPair();
  rejects(() => verifyProvisioningJwt(makeJwt({ alg: "EdDSA" }, { ...base(), exp: 1 }, other.privateKey), hex), "bad_signature");
});

test("a token with tcs needs a chain issuer and an unexpired issexp", () => {
  const { privateKey, pubHex } = edPair();
  const tok = (c: Record<string, unknown>) => makeJwt({ alg: "EdDSA", typ: "JWT" }, { ...base(), ...c }, privateKey);
  assert.ok(verifyProvisioningJwt(tok({ tcs: "ab.cd", iss: "C-x.y", issexp: nowS() + 60 }), pubHex));
  rejects(() => verifyProvisioningJwt(tok({ tcs: "ab.cd", iss: "C-x.y" }), pubHex), "chain_expired", /issexp/);
  rejects(() => verifyProvisioningJwt(tok({ tcs: "ab.cd", iss: "C-x.y", issexp: nowS() - 1 }), pubHex), "chain_expired", /expired at/);
  rejects(() => verifyProvisioningJwt(tok({ tcs: "ab", iss: "I-abc", issexp: nowS() + 60 }), pubHex), "chain_expired", /not a chain issuer/);
  // an empty tcs is no chain
  assert.ok(verifyProvisioningJwt(tok({ tcs: "" }), pubHex));
});

test("malformed tokens and ill-typed claims are malformed", () => {
  const { privateKey, pubHex } = edPair();
  for (const bad of ["", "a.b", "a.b.c.d", "!!!.e30.", `${Buffer.from("{").toString("base64url")}.e30.`, "eyJhbGciOiJFZERTQSJ9.WzFd.", "eyJhbGciOiJFZERTQSJ9.e30=.AA"]) {
    rejects(() => verifyProvisioningJwt(bad, pubHex), "malformed");
  }
  for (const c of [{ exp: "tomorrow" }, { chs: "true" }, { cht: 5 }, { extensions: [1] }, { aud: [1] }]) {
    rejects(() => verifyProvisioningJwt(makeJwt({ alg: "EdDSA" }, { ...base(), ...c }, privateKey), pubHex), "malformed", new RegExp(Object.keys(c)[0]!));
  }
  // a claim or header nested 20,000 deep (before the signature is checked) is named, not written out
  const deep = '{"k":'.repeat(20_000) + "1" + "}".repeat(20_000);
  const b64 = (t: string) => Buffer.from(t).toString("base64url");
  rejects(() => verifyProvisioningJwt(`${b64('{"alg":"EdDSA"}')}.${b64(`{"exp":${deep}}`)}.AA`, pubHex), "malformed", /claim exp must be a number of seconds, got <an object nested more than 64 levels deep>/);
  rejects(() => verifyProvisioningJwt(`${b64(`{"alg":${deep}}`)}.${b64("{}")}.AA`, pubHex), "unsupported_alg", /signing method <an object nested/);
  // null is Go's zero value, not an error
  assert.ok(verifyProvisioningJwt(makeJwt({ alg: "EdDSA" }, { ...base(), chu: null, exp: null }, privateKey), pubHex));
});

test("loadJwtVerifier follows jwt_verify_cert: file with RSA PEM, certificate or hex; otherwise the value is hex", () => {
  const dir = mkdtempSync(join(tmpdir(), "jwtv-"));
  const hexFile = join(dir, "signer.public");
  writeFileSync(hexFile, `${edHex.trim()}\n`);
  assert.equal(loadJwtVerifier(hexFile).kind, "ed25519");
  assert.equal(loadJwtVerifier(edHex.toUpperCase()).kind, "ed25519");
  assert.throws(() => loadJwtVerifier(join(dir, "missing.pem")), CredentialConfigError, "a missing file is taken as hex and refused");
  assert.throws(() => loadJwtVerifier(""), /jwt_verify_cert/);
  assert.throws(() => loadJwtVerifier("abcd"), /64 hex characters/);
  const edPem = join(dir, "ed.pem");
  writeFileSync(edPem, edPair().publicKey.export({ type: "spki", format: "pem" }));
  assert.throws(() => loadJwtVerifier(edPem), /must be RSA/);
  const garbage = join(dir, "garbage.pem");
  writeFileSync(garbage, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  assert.throws(() => loadJwtVerifier(garbage), CredentialConfigError);
  // a certificate wrapping the fixture's signer key is accepted like the key itself
  const { publicKey, privateKey } = rsaPair();
  const keyFile = join(dir, "k.pem");
  writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }));
  let cert: string;
  try {
    cert = execFileSync("openssl", ["req", "-x509", "-key", keyFile, "-subj", "/CN=signer", "-days", "1"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return; // no openssl on this machine: the PEM-key paths above still ran
  }
  const certFile = join(dir, "signer.pem");
  writeFileSync(certFile, cert);
  const v = loadJwtVerifier(certFile);
  assert.equal(v.kind, "rsa");
  assert.ok(v.key.equals(publicKey));
  assert.ok(verifyProvisioningJwt(makeJwt({ alg: "RS256", typ: "JWT" }, base(), privateKey), certFile));
});

test("publicClaims drops the token and broker password and nothing else", () => {
  const { claims } = verifyProvisioningJwt(rsToken, { pem: rsPem }, AT);
  const pub = publicClaims({ ...claims, chpwd: "pw", chusr: "u" });
  assert.equal(pub.cht, undefined);
  assert.equal(pub.chpwd, undefined);
  assert.equal(pub.chusr, "u");
  assert.equal(pub.chu, "nats://localhost:4222");
  assert.ok(!JSON.stringify(pub).includes("s3cret"));
  assert.equal(claims.cht, "s3cret", "the input is not mutated");
});
