import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KeyTransportError,
  decryptKeyFromProvisioner,
  encryptKeyForNode,
  evpBytesToKey,
  generateEcdhKeyPair,
  legacyPemDecrypt,
  legacyPemEncrypt,
} from "../../src/credentials/index.js";
import { decryptDeliveredKey } from "../../src/sim/keytransport.js";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const pkcs1Pem = rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
const pkcs8Pem = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString();

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KeyTransportError, `expected KeyTransportError, got ${String(e)}`);
    assert.ok(!e.message.includes("-----") && !/[A-Za-z0-9+/]{40}/.test(e.message), "errors never carry key text");
    return e.code;
  }
  assert.fail("did not throw");
}

test("round trip: the node decrypts what the provisioner encrypted, from PKCS#1 or PKCS#8 input", () => {
  for (const input of [pkcs1Pem, pkcs8Pem]) {
    const node = generateEcdhKeyPair();
    assert.match(node.publicHex, /^[0-9a-f]{64}$/);
    const { encryptedPem, ecdhPublicHex } = encryptKeyForNode(input, node.publicHex);
    assert.match(ecdhPublicHex, /^[0-9a-f]{64}$/);
    assert.notEqual(ecdhPublicHex, node.publicHex);
    const lines = encryptedPem.trimEnd().split("\n");
    assert.equal(lines[0], "-----BEGIN RSA PRIVATE KEY-----");
    assert.equal(lines[1], "Proc-Type: 4,ENCRYPTED");
    assert.match(lines[2]!, /^DEK-Info: AES-256-CBC,[0-9a-f]{32}$/);
    assert.equal(lines[3], "");
    assert.equal(lines.at(-1), "-----END RSA PRIVATE KEY-----");
    assert.ok(lines.slice(4, -1).every((l) => l.length <= 64));
    assert.ok(!encryptedPem.includes(pkcs1Pem.split("\n")[1]!), "the clear body is not in the output");
    const clear = decryptKeyFromProvisioner(encryptedPem, node.privateKey, ecdhPublicHex);
    assert.equal(clear, pkcs1Pem, "the node gets the PKCS#1 form the configure DDL expects");
    // the raw private scalar as hex works too (Go keeps raw bytes)
    const rawHex = Buffer.from(String(node.privateKey.export({ format: "jwk" }).d), "base64url").toString("hex");
    assert.equal(decryptKeyFromProvisioner(encryptedPem, rawHex, ecdhPublicHex), pkcs1Pem);
    // and the simulator's independent node-side implementation agrees
    assert.ok(decryptDeliveredKey(encryptedPem, ecdhPublicHex, node.privateKey).equals(rsa.privateKey));
  }
});

test("each call uses a fresh provisioner key and IV", () => {
  const node = generateEcdhKeyPair();
  const a = encryptKeyForNode(pkcs1Pem, node.publicHex);
  const b = encryptKeyForNode(pkcs1Pem, node.publicHex);
  assert.notEqual(a.ecdhPublicHex, b.ecdhPublicHex);
  assert.notEqual(a.encryptedPem, b.encryptedPem);
});

test("the wrong node key or a stale provisioner key fail to decrypt; a tampered body never yields the key", () => {
  const node = generateEcdhKeyPair();
  const { encryptedPem, ecdhPublicHex } = encryptKeyForNode(pkcs1Pem, node.publicHex);
  // a node that ran `jwt` again has a new key: decryption must fail, not yield garbage
  assert.equal(codeOf(() => decryptKeyFromProvisioner(encryptedPem, generateEcdhKeyPair().privateKey, ecdhPublicHex)), "decrypt_failed");
  assert.equal(codeOf(() => decryptKeyFromProvisioner(encryptedPem, node.privateKey, generateEcdhKeyPair().publicHex)), "decrypt_failed");
  const lines = encryptedPem.split("\n");
  lines[6] = lines[6]!.startsWith("A") ? `B${lines[6]!.slice(1)}` : `A${lines[6]!.slice(1)}`;
  // legacy PEM encryption has no MAC: a flipped middle block may still parse as *some* key
  // (Go's node has the same weakness), but it can never give back the original key
  let tampered: string | undefined;
  try {
    tampered = decryptKeyFromProvisioner(lines.join("\n"), node.privateKey, ecdhPublicHex);
  } catch (e) {
    assert.ok(e instanceof KeyTransportError && e.code === "decrypt_failed");
  }
  assert.notEqual(tampered, pkcs1Pem);
});

test("bad inputs are refused with codes", () => {
  const node = generateEcdhKeyPair();
  assert.equal(codeOf(() => encryptKeyForNode(pkcs1Pem, "abcd")), "bad_public_key");
  assert.equal(codeOf(() => encryptKeyForNode(pkcs1Pem, "zz".repeat(32))), "bad_public_key");
  // the all-zero point (low order) would give an all-zero secret
  assert.equal(codeOf(() => encryptKeyForNode(pkcs1Pem, "00".repeat(32))), "bad_public_key");
  assert.equal(codeOf(() => encryptKeyForNode("not a pem", node.publicHex)), "bad_input_key");
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  assert.equal(codeOf(() => encryptKeyForNode(ec, node.publicHex)), "bad_input_key");
  const already = legacyPemEncrypt(rsa.privateKey.export({ type: "pkcs1", format: "der" }), Buffer.from("pw"));
  assert.equal(codeOf(() => encryptKeyForNode(already, node.publicHex)), "bad_input_key");
  assert.equal(codeOf(() => decryptKeyFromProvisioner(pkcs1Pem, node.privateKey, node.publicHex)), "not_encrypted");
  assert.equal(codeOf(() => decryptKeyFromProvisioner("garbage", node.privateKey, node.publicHex)), "bad_format");
  assert.equal(codeOf(() => decryptKeyFromProvisioner(already.replace("AES-256-CBC", "DES-EDE3-CBC"), node.privateKey, node.publicHex)), "bad_format");
  assert.equal(codeOf(() => decryptKeyFromProvisioner(already, rsa.privateKey, node.publicHex)), "bad_private_key");
});

test("the shared secret is plain X25519: both sides derive the same 32 bytes", () => {
  const a = generateEcdhKeyPair();
  const b = generateEcdhKeyPair();
  const pub = (hex: string) => createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(hex, "hex").toString("base64url") }, format: "jwk" });
  const s1 = diffieHellman({ privateKey: a.privateKey, publicKey: pub(b.publicHex) });
  const s2 = diffieHellman({ privateKey: b.privateKey, publicKey: pub(a.publicHex) });
  assert.equal(s1.length, 32);
  assert.ok(s1.equals(s2));
  // encrypting with the secret as the password is exactly what encryptKeyForNode produces
  const der = legacyPemDecrypt(legacyPemEncrypt(rsa.privateKey.export({ type: "pkcs1", format: "der" }), s1), s2);
  assert.ok(createPrivateKey({ key: der, format: "der", type: "pkcs1" }).equals(rsa.privateKey));
});

test("EVP_BytesToKey matches openssl enc -md md5 -P (key and IV) for ASCII passwords", { skip: !hasOpenssl() && "openssl not installed" }, () => {
  for (const pass of ["s3cret", "a much longer password that spans more than one md5 block", "x"]) {
    const salt = randomBytes(8);
    const out = execFileSync("openssl", ["enc", "-aes-256-cbc", "-md", "md5", "-S", salt.toString("hex"), "-pass", `pass:${pass}`, "-P"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const key = /key\s*=\s*([0-9A-F]+)/i.exec(out)?.[1];
    const iv = /iv\s*=\s*([0-9A-F]+)/i.exec(out)?.[1];
    const derived = evpBytesToKey(Buffer.from(pass), salt, 48);
    assert.equal(derived.subarray(0, 32).toString("hex").toUpperCase(), key);
    assert.equal(derived.subarray(32).toString("hex").toUpperCase(), iv);
  }
});

test("the PEM format interoperates with openssl both ways", { skip: !hasOpenssl() && "openssl not installed" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kt-"));
  const der = rsa.privateKey.export({ type: "pkcs1", format: "der" });
  // ours -> openssl rsa
  const ours = join(dir, "ours.pem");
  writeFileSync(ours, legacyPemEncrypt(der, Buffer.from("s3cret")));
  const opened = execFileSync("openssl", ["rsa", "-in", ours, "-passin", "pass:s3cret", "-traditional"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  assert.ok(createPrivateKey(opened).equals(rsa.privateKey));
  assert.throws(() => execFileSync("openssl", ["rsa", "-in", ours, "-passin", "pass:wrong"], { stdio: "ignore" }));
  // openssl -aes256 -traditional -> ours
  const clear = join(dir, "clear.pem");
  writeFileSync(clear, pkcs1Pem);
  const theirs = execFileSync("openssl", ["rsa", "-in", clear, "-aes256", "-traditional", "-passout", "pass:s3cret"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  assert.match(theirs, /DEK-Info: AES-256-CBC,[0-9A-F]{32}/);
  assert.ok(createPrivateKey({ key: legacyPemDecrypt(theirs, Buffer.from("s3cret")), format: "der", type: "pkcs1" }).equals(rsa.privateKey));
});
