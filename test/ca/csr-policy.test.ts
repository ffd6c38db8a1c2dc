import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkCsr, inspectCsr, CsrRefusedError, CSR_REFUSAL_CODES, DEFAULT_DENY_PATTERNS, type CsrRefusalCode } from "../../src/ca/index.js";
import { generateKeys, makeCsr, tamperPem } from "./csr-fixtures.js";

const ID = "node1.example.net";

function refused(pem: string, code: CsrRefusalCode, policy: Parameters<typeof checkCsr>[1] = { identity: ID }): string {
  const r = checkCsr(pem, policy);
  assert.equal(r.ok, false, `expected refusal ${code}`);
  if (r.ok) throw new Error("unreachable");
  assert.equal(r.code, code, r.reason);
  assert.ok(r.reason.length > 10, "a human reason is given");
  return r.reason;
}

describe("CSR policy", () => {
  let rsaKeys: Awaited<ReturnType<typeof generateKeys>>;
  let good: string;
  before(async () => {
    rsaKeys = await generateKeys({ kind: "rsa", bits: 2048 });
    good = await makeCsr({ keys: rsaKeys, cn: ID, subject: { C: "GB", L: "London", O: "Acme", OU: "Ops" } });
  });

  test("accepts a gencsr-like RSA-2048 CSR and summarises it", () => {
    const r = checkCsr(good, { identity: ID });
    assert.deepEqual(r, { ok: true, csr: { cn: ID, sans: [], keyType: "rsa", keyBits: 2048 } });
  });

  test("accepts an openssl-made CSR (Go-style: RSA-2048, SHA256WithRSA, C/O/CN)", () => {
    const dir = mkdtempSync(join(tmpdir(), "csr-"));
    try {
      execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-subj", `/C=GB/O=Acme/CN=${ID}`], { stdio: "ignore" });
      const r = checkCsr(readFileSync(join(dir, "c.pem"), "utf8"), { identity: ID });
      assert.ok(r.ok, r.ok ? "" : r.reason);
      assert.equal(r.csr.keyBits, 2048);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("accepts ECDSA P-256, P-384 and Ed25519 keys", async () => {
    for (const key of [{ kind: "ec", curve: "P-256" }, { kind: "ec", curve: "P-384" }, { kind: "ed25519" }] as const) {
      const r = checkCsr(await makeCsr({ cn: ID, key }), { identity: ID });
      assert.ok(r.ok, r.ok ? "" : `${JSON.stringify(key)}: ${r.reason}`);
    }
    const ec = inspectCsr(await makeCsr({ cn: ID, key: { kind: "ec", curve: "P-384" } }));
    assert.equal(ec.curve, "P-384");
    assert.equal(ec.keyBits, 384);
  });

  test("not_pem: garbage, wrong label, empty, non-string", () => {
    refused("hello world", "not_pem");
    refused("", "not_pem");
    refused(good.replaceAll("CERTIFICATE REQUEST", "CERTIFICATE"), "not_pem");
    refused(good + good, "not_pem");
    refused("junk before\n" + good, "not_pem");
    refused(good.replace(/\n([A-Za-z0-9+/]{10})/, "\n$1!!!!"), "not_pem");
    refused(42 as unknown as string, "not_pem");
    // the reference provisioner crashes here; inspectCsr must throw a typed error instead
    assert.throws(() => inspectCsr("not a csr"), (e: unknown) => e instanceof CsrRefusedError && e.code === "not_pem");
  });

  test("too_large: PEM over 16 KiB is refused before parsing, limit configurable", () => {
    const big = good + "\n".repeat(16 * 1024);
    const reason = refused(big, "too_large");
    assert.match(reason, /16384/);
    refused(good, "too_large", { identity: ID, maxBytes: 100 });
  });

  test("malformed: valid PEM around random bytes or truncated DER", () => {
    const junk = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from("definitely not DER at all").toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    refused(junk, "malformed");
    refused(tamperPem(good, () => {}).replace(/[A-Za-z0-9+/=]{64}\n-----END/, "-----END"), "malformed");
    assert.throws(() => inspectCsr(junk), (e: unknown) => e instanceof CsrRefusedError && e.code === "malformed");
  });

  test("bad_signature: altered subject or flipped signature bit", () => {
    const cnAt = (der: Buffer) => der.indexOf(Buffer.from(ID));
    const altered = tamperPem(good, (der) => {
      der[cnAt(der)] = "m".charCodeAt(0); // node1 -> mode1, same length, signature no longer matches
    });
    refused(altered, "bad_signature", { identity: "mode1.example.net" });
    const flipped = tamperPem(good, (der) => {
      der[der.length - 1] ^= 0x01;
    });
    refused(flipped, "bad_signature");
  });

  test("cn_mismatch: CN differs from identity, missing or repeated", async () => {
    const reason = refused(await makeCsr({ keys: rsaKeys, cn: "other.example.net" }), "cn_mismatch");
    assert.match(reason, /other\.example\.net/);
    refused(await makeCsr({ keys: rsaKeys, cn: [], subject: { O: "Acme" } }), "cn_mismatch");
    refused(await makeCsr({ keys: rsaKeys, cn: [ID, ID] }), "cn_mismatch");
  });

  test("denied_name: Choria client certificate names in CN or SAN, any case", async () => {
    for (const cn of ["bob.privileged.mcollective", "bob.privileged.choria", "bob.mcollective", "BOB.CHORIA"]) {
      refused(await makeCsr({ keys: rsaKeys, cn }), "denied_name", { identity: cn });
    }
    refused(await makeCsr({ keys: rsaKeys, cn: ID, dns: [ID, "admin.privileged.choria"] }), "denied_name", { identity: ID, allowedSans: ["admin.privileged.choria"] });
    assert.equal(DEFAULT_DENY_PATTERNS.length, 4);
    // an operator's own list replaces the default
    const custom = await makeCsr({ keys: rsaKeys, cn: "db1.internal" });
    refused(custom, "denied_name", { identity: "db1.internal", denyPatterns: [/^db\d+\./] });
    assert.ok(checkCsr(await makeCsr({ keys: rsaKeys, cn: "x.choria" }), { identity: "x.choria", denyPatterns: [] }).ok);
  });

  test("san_not_allowed: SANs beyond identity need the policy's grant; IP SANs compared as text", async () => {
    const pem = await makeCsr({ keys: rsaKeys, cn: ID, dns: [ID, "www.example.net"], ips: ["192.0.2.7"] });
    const reason = refused(pem, "san_not_allowed");
    assert.match(reason, /www\.example\.net/);
    refused(pem, "san_not_allowed", { identity: ID, allowedSans: ["www.example.net"] });
    const ok = checkCsr(pem, { identity: ID, allowedSans: ["WWW.example.net", "192.0.2.7"] });
    assert.ok(ok.ok);
    assert.deepEqual(ok.csr.sans, [ID, "www.example.net", "192.0.2.7"]);
  });

  test("weak_key: RSA-1024", async () => {
    const reason = refused(await makeCsr({ cn: ID, key: { kind: "rsa", bits: 1024 } }), "weak_key");
    assert.match(reason, /1024/);
  });

  test("unsupported_key: ECDSA P-521", async () => {
    const reason = refused(await makeCsr({ cn: ID, key: { kind: "ec", curve: "P-521" } }), "unsupported_key");
    assert.match(reason, /P-521/);
  });

  test("bad_name: a CN, CSR SAN or granted SAN that is not a DNS name (or an IP SAN)", async () => {
    for (const cn of ["$(touch${IFS}/tmp/pwned)", "a;rm-rf", "/etc/passwd"]) refused(await makeCsr({ keys: rsaKeys, cn }), "bad_name", { identity: cn });
    refused(await makeCsr({ keys: rsaKeys, cn: ID, dns: [ID, "x y.example.net"] }), "bad_name", { identity: ID, allowedSans: ["x y.example.net"] });
    refused(await makeCsr({ keys: rsaKeys, cn: ID }), "bad_name", { identity: ID, allowedSans: ["`id`"] });
  });

  test("every refusal code is exercised above", () => {
    assert.deepEqual([...CSR_REFUSAL_CODES].sort(), ["bad_name", "bad_signature", "cn_mismatch", "denied_name", "malformed", "not_pem", "san_not_allowed", "too_large", "unsupported_key", "weak_key"]);
  });
});
