/**
 * The credentials configuration keys: schema rules with positions, defaults (ed25519 implies jwt
 * and turns pki off), path handling for jwt_verify_cert, and the daemon's fail-fast checks of
 * keys and chain tokens before any node is touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, credentialProblems, loadConfigFile, parseConfigText, parseDuration, resolveSettings } from "../../src/config/index.js";
import { credentialFlowOptions, jwtVerifierSource } from "../../src/credentials/settings.js";
import { edPair, makeJwt, nowS, rsaPair } from "./helpers.js";

const errorsOf = (text: string): string[] => {
  try {
    parseConfigText(text, "c.yaml");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message.split("\n");
  }
  return [];
};

test("durations take d, w and y (server_jwt_validity: 1y as in reference configurations)", () => {
  assert.equal(parseDuration("1y", 0), 365 * 86_400_000);
  assert.equal(parseDuration("2w", 0), 14 * 86_400_000);
  assert.equal(parseDuration("30d", 0), 30 * 86_400_000);
  assert.deepEqual(errorsOf("server_jwt_validity: 1y\n"), []);
  assert.ok(errorsOf("server_jwt_validity: 1 year\n").some((l) => l.startsWith("c.yaml:1:22: server_jwt_validity")));
});

test("the schema refuses incomplete credential settings", () => {
  assert.ok(errorsOf("features: { jwt: true }\n").some((l) => /jwt_verify_cert/.test(l)));
  const ed = errorsOf("features: { ed25519: true, pki: true }\n");
  assert.ok(ed.some((l) => /jwt_signing_key/.test(l)), ed.join("\n"));
  assert.ok(ed.some((l) => /^c\.yaml:1:33: features\.pki/.test(l)), ed.join("\n"));
  assert.ok(errorsOf("protocol: 2\n").some((l) => /client_jwt/.test(l)));
  assert.ok(errorsOf("protocol: 3\n").some((l) => /protocol/.test(l)));
  assert.deepEqual(errorsOf("features: { ed25519: true }\njwt_verify_cert: a.pem\njwt_signing_key: s.seed\nprotocol: 2\nclient_jwt: c.jwt\n"), []);
});

test("ed25519 implies jwt and turns pki off; credentialProblems names every missing piece", () => {
  const s = resolveSettings({ features: { ed25519: true }, jwt_verify_cert: "a.pem", jwt_signing_key: "s.seed" }, {});
  assert.equal(s.jwt, true);
  assert.equal(s.pki, false);
  assert.equal(s.serverJwtValidityMs, 365 * 86_400_000);
  assert.equal(s.protocol, 1);
  assert.deepEqual(resolveSettings({}, {}).pki, true);
  // the schema refuses these combinations in a document (resolveSettings validates); settings
  // assembled in code get the same answer, in sentences, from credentialProblems
  assert.throws(() => resolveSettings({ features: { ed25519: true } }, {}), /must have required property 'jwt_verify_cert'/);
  const problems = credentialProblems({ ...resolveSettings({}, {}), ed25519: true, jwt: true, pki: true, protocol: 2 });
  assert.equal(problems.length, 4, problems.join("\n"));
  assert.ok(problems.some((p) => /excludes features\.pki/.test(p)));
  assert.ok(problems.some((p) => /jwt_verify_cert/.test(p)));
  assert.ok(problems.some((p) => /jwt_signing_key/.test(p)));
  assert.ok(problems.some((p) => /client_jwt/.test(p)));
});

test("relative credential paths resolve against the config file, a hex jwt_verify_cert stays a value", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-credcfg-"));
  const hex = "ab".repeat(32);
  writeFileSync(join(dir, "a.yaml"), `features: { ed25519: true }\njwt_verify_cert: ${hex}\njwt_signing_key: keys/s.seed\njwt_signing_token: keys/chain.jwt\nprotocol: 2\nclient_jwt: client.jwt\n`);
  const c = loadConfigFile(join(dir, "a.yaml"));
  assert.equal(c.jwt_verify_cert, hex);
  assert.equal(c.jwt_signing_key, join(dir, "keys/s.seed"));
  assert.equal(c.jwt_signing_token, join(dir, "keys/chain.jwt"));
  assert.equal(c.client_jwt, join(dir, "client.jwt"));
  writeFileSync(join(dir, "b.yaml"), "features: { jwt: true }\njwt_verify_cert: certs/signer.pem\n");
  assert.equal(loadConfigFile(join(dir, "b.yaml")).jwt_verify_cert, join(dir, "certs/signer.pem"));
});

test("the daemon refuses unusable keys at start, without printing them", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-credstart-"));
  const verify = edPair();
  const seedFile = join(dir, "s.seed");
  const base = { features: { ed25519: true }, jwt_verify_cert: verify.pubHex, jwt_signing_key: seedFile };

  assert.throws(() => credentialFlowOptions(resolveSettings(base, {})), /cannot read jwt_signing_key .*ENOENT/);
  writeFileSync(seedFile, "not a key", { mode: 0o600 });
  assert.throws(() => credentialFlowOptions(resolveSettings(base, {})), (e: Error) => /jwt_signing_key must be/.test(e.message) && !e.message.includes("not a key"));
  assert.throws(() => credentialFlowOptions(resolveSettings({ ...base, jwt_verify_cert: join(dir, "missing-and-not-hex") }, {})), /jwt_verify_cert value/);

  // a chain token issued to another key would make every server JWT unverifiable: refused up front
  const signing = edPair();
  const issuer = edPair();
  writeFileSync(seedFile, signing.seedHex);
  const chain = join(dir, "chain.jwt");
  writeFileSync(chain, makeJwt({ alg: "EdDSA", typ: "JWT" }, { purpose: "choria_client_id", tcs: "abcd", jti: "2Nn0fX4bJ4n3L3l4h4f7Jq0g1Zk", public_key: issuer.pubHex, exp: nowS() + 3600 }, issuer.privateKey));
  assert.throws(() => credentialFlowOptions(resolveSettings({ ...base, jwt_signing_token: chain }, {})), (e: Error) => /does not belong to jwt_signing_token/.test(e.message) && !e.message.includes(signing.seedHex));

  chmodSync(seedFile, 0o644);
  assert.throws(() => credentialFlowOptions(resolveSettings(base, {})), (e: Error) => /jwt_signing_key .* has mode 0644/.test(e.message) && !e.message.includes(signing.seedHex), "a signing key others can read is refused");
  chmodSync(seedFile, 0o600);
  const ok = credentialFlowOptions(resolveSettings(base, {}));
  assert.equal(ok.ed25519?.signingKey, signing.seedHex);
  assert.equal(ok.jwt?.verifier().kind, "ed25519");
});

test("jwt_verify_cert is re-read when the file changes, so a rotated key applies without a restart", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-rotate-"));
  const file = join(dir, "signer.pem");
  const a = rsaPair();
  const b = rsaPair();
  writeFileSync(file, a.publicKey.export({ type: "spki", format: "pem" }));
  const source = jwtVerifierSource(file);
  const first = source();
  assert.equal(source(), first, "unchanged file: the loaded key is reused");
  writeFileSync(file, b.publicKey.export({ type: "spki", format: "pem" }));
  // make sure the mtime differs even on coarse file systems
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const second = source();
  assert.notEqual(second, first);
  assert.ok(second.key.equals(b.publicKey));
});
