import "reflect-metadata";
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { setTimeout as delay } from "node:timers/promises";
import * as x509 from "@peculiar/x509";
import { initBuiltinCa, openBuiltinCa, parseCsr, CaUnavailableError, CsrRefusedError, type BuiltinCa } from "../../src/ca/index.js";
import { SignPool } from "../../src/ca/pool.js";
import { loadCa } from "../../src/ca/builtin-ca.js";
import { declaredFields, parsedFields } from "../../src/ca/ledger-signer.js";
import { generateKeys, makeCsr } from "./csr-fixtures.js";

const ID = "node1.example.net";
const tmp = mkdtempSync(join(tmpdir(), "builtin-ca-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function ext<T>(cert: x509.X509Certificate, type: new (...a: never[]) => T): T {
  const e = cert.getExtension(type as never) as T | null;
  assert.ok(e, `extension ${type.name} present`);
  return e;
}

describe("initBuiltinCa", () => {
  for (const key of ["rsa", "ecdsa"] as const) {
    test(`${key}: key file 0600, self-signed CA with CA constraints, keyCertSign/cRLSign and SKI`, async () => {
      const dir = join(tmp, `init-${key}`);
      const { certPath, keyPath } = await initBuiltinCa(dir, { key, commonName: "Test CA", validityDays: 30 });
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      const k = createPrivateKey(readFileSync(keyPath));
      assert.equal(k.asymmetricKeyType, key === "rsa" ? "rsa" : "ec");
      const cert = new x509.X509Certificate(readFileSync(certPath, "utf8"));
      assert.equal(cert.subject, "CN=Test CA");
      assert.equal(cert.issuer, "CN=Test CA");
      assert.ok(await cert.verify({ signatureOnly: true }), "self-signature verifies");
      const bc = ext(cert, x509.BasicConstraintsExtension);
      assert.equal(bc.ca, true);
      assert.equal(bc.critical, true);
      const ku = ext(cert, x509.KeyUsagesExtension);
      assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      const ski = ext(cert, x509.SubjectKeyIdentifierExtension);
      assert.match(ski.keyId, /^[0-9a-f]{40}$/);
      const days = (cert.notAfter.getTime() - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days <= 30, `validity ${days} days`);
    });
  }

  test("refuses to overwrite an existing CA unless forced", async () => {
    const dir = join(tmp, "twice");
    await initBuiltinCa(dir);
    const before = readFileSync(join(dir, "ca-key.pem"), "utf8");
    await assert.rejects(initBuiltinCa(dir), /already exists/);
    assert.equal(readFileSync(join(dir, "ca-key.pem"), "utf8"), before);
    await initBuiltinCa(dir, { force: true });
    assert.notEqual(readFileSync(join(dir, "ca-key.pem"), "utf8"), before);
    assert.equal(statSync(join(dir, "ca-key.pem")).mode & 0o777, 0o600);
  });
});

describe("openBuiltinCa", () => {
  test("refuses a key file readable by group or others, naming file and mode", async () => {
    const dir = join(tmp, "perms");
    const { keyPath } = await initBuiltinCa(dir);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(keyPath, mode);
      await assert.rejects(openBuiltinCa(dir, { workers: 1 }), (e: Error) => e.message.includes(keyPath) && e.message.includes(`0${mode.toString(8)}`));
    }
    chmodSync(keyPath, 0o400);
    const ca = await openBuiltinCa(dir, { workers: 1 });
    await ca.close();
  });

  test("refuses a certificate that does not belong to the key", async () => {
    const a = join(tmp, "mix-a");
    const b = join(tmp, "mix-b");
    await initBuiltinCa(a);
    await initBuiltinCa(b);
    writeFileSync(join(a, "ca.pem"), readFileSync(join(b, "ca.pem")));
    assert.throws(() => loadCa(a), /does not belong/);
  });

  test("missing CA directs the operator to ca init", async () => {
    await assert.rejects(openBuiltinCa(join(tmp, "nothing-here")), /ca init/);
  });
});

for (const key of ["ecdsa", "rsa"] as const) {
  describe(`built-in CA signing (${key} CA key)`, () => {
    let ca: BuiltinCa;
    let csr: string;
    before(async () => {
      const dir = join(tmp, `sign-${key}`);
      await initBuiltinCa(dir, { key });
      ca = await openBuiltinCa(dir, { workers: 2 });
      csr = await makeCsr({ cn: ID, subject: { C: "GB", O: "Acme" } });
    });
    after(() => ca.close());

    test("what the CA says of its leaf is what the ledger would parse from it: the ledger row is the same either way", async () => {
      const r = await ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 3, sans: ["Alt.Example.NET", "alt.example.net", "192.0.2.10", "2001:0db8:0:0::1", "::ffff:192.0.2.1"] } });
      assert.ok(r.leaf, "the built-in CA describes its leaf");
      assert.deepEqual(declaredFields(r), parsedFields(r));
    });

    test("leaf carries CN, SANs (DNS and IP), EKU, key usage, SKI/AKI, positive 16-byte serial, profile validity", async () => {
      const t0 = Date.now();
      const r = await ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 7, sans: ["alt.example.net", "192.0.2.10", "2001:db8::1"] } });
      const cert = new x509.X509Certificate(r.certificatePem);
      const caCert = new x509.X509Certificate(ca.caCertificatePem);
      assert.equal(r.caPem, ca.caCertificatePem);
      assert.equal(cert.subject, `CN=${ID}`);
      assert.equal(cert.issuer, caCert.subject);
      assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }), "signed by the CA");
      const san = ext(cert, x509.SubjectAlternativeNameExtension).names.toJSON();
      assert.deepEqual(san, [
        { type: "dns", value: ID },
        { type: "dns", value: "alt.example.net" },
        { type: "ip", value: "192.0.2.10" },
        { type: "ip", value: "2001:db8::1" },
      ]);
      assert.deepEqual([...ext(cert, x509.ExtendedKeyUsageExtension).usages], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
      const ku = ext(cert, x509.KeyUsagesExtension);
      assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
      assert.equal(ext(cert, x509.BasicConstraintsExtension).ca, false);
      const aki = ext(cert, x509.AuthorityKeyIdentifierExtension).keyId;
      assert.equal(aki, ext(caCert, x509.SubjectKeyIdentifierExtension).keyId);
      assert.match(ext(cert, x509.SubjectKeyIdentifierExtension).keyId, /^[0-9a-f]{40}$/);
      // 16 bytes, sign bit clear, first byte non-zero: positive and minimally DER-encoded
      assert.match(r.serial, /^(0[1-9a-f]|[1-7][0-9a-f])[0-9a-f]{30}$/);
      assert.equal(cert.serialNumber.toLowerCase(), r.serial);
      // notBefore is backdated for clock skew, notAfter follows the profile
      assert.ok(cert.notBefore.getTime() <= t0 - 4 * 60_000 && cert.notBefore.getTime() >= t0 - 6 * 60_000, `notBefore ${cert.notBefore.toISOString()}`);
      const days = (cert.notAfter.getTime() - t0) / 86_400_000;
      assert.ok(Math.abs(days - 7) < 0.01, `validity ${days}`);
      assert.ok(Math.abs(new Date(r.notAfter).getTime() - cert.notAfter.getTime()) < 1000, `notAfter ${r.notAfter}`);
      // the public key is the node's, untouched
      const nodeKey = new x509.Pkcs10CertificateRequest(csr).publicKey.rawData;
      assert.deepEqual(Buffer.from(cert.publicKey.rawData), Buffer.from(nodeKey));
      // the fingerprint is sha256 of the DER
      assert.equal(r.fingerprint, new X509Certificate(r.certificatePem).fingerprint256.replaceAll(":", "").toLowerCase());
    });

    test("serials are unique across many signs", async () => {
      const rs = await Promise.all(Array.from({ length: 100 }, () => ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } })));
      assert.equal(new Set(rs.map((r) => r.serial)).size, 100);
    });

    test("refuses what the CSR checks refuse, as CsrRefusedError with the code", async () => {
      await assert.rejects(ca.sign({ identity: ID, csrPem: "garbage", profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CsrRefusedError && e.code === "not_pem");
      const weak = await makeCsr({ cn: ID, key: { kind: "rsa", bits: 1024 } });
      await assert.rejects(ca.sign({ identity: ID, csrPem: weak, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CsrRefusedError && e.code === "weak_key");
      await assert.rejects(ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 0, sans: [] } }), /validityDays/);
    });

    test("a checked parse is used only when it is parseCsr's own parse of this very PEM", async () => {
      const keyOf = (pem: string) => Buffer.from(new x509.X509Certificate(pem).publicKey.rawData);
      const csrKey = Buffer.from(new x509.Pkcs10CertificateRequest(csr).publicKey.rawData);
      const other = await makeCsr({ cn: ID, key: { kind: "ec", curve: "P-256" } });
      const otherParse = parseCsr(other);
      // the daemon's path: its own parse handed back, the worker skips parsing and verifying
      const own = await ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] }, checked: parseCsr(csr) });
      assert.deepEqual(keyOf(own.certificatePem), csrKey);
      // another CSR's parse, or a look-alike object, never puts a different key in the certificate
      const mismatched = await ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] }, checked: otherParse });
      assert.deepEqual(keyOf(mismatched.certificatePem), csrKey);
      const forged = await ca.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] }, checked: { ...otherParse, pem: csr } });
      assert.deepEqual(keyOf(forged.certificatePem), csrKey);
      // and a weak key is refused even on the trusted path
      const weak = await makeCsr({ cn: ID, key: { kind: "rsa", bits: 1024 } });
      await assert.rejects(ca.sign({ identity: ID, csrPem: weak, profile: { validityDays: 1, sans: [] }, checked: parseCsr(weak) }), (e: unknown) => e instanceof CsrRefusedError && e.code === "weak_key");
    });
  });
}

describe("sign pool", () => {
  test("signs on several worker threads at the same time and shuts down cleanly", async () => {
    const dir = join(tmp, "pool");
    await initBuiltinCa(dir);
    const loaded = loadCa(dir);
    const pool = await SignPool.start({ caKeyDer: new Uint8Array(loaded.key.export({ format: "der", type: "pkcs8" })), caCertDer: loaded.certDer }, { size: 2 });
    const ids = pool.threadIds();
    assert.equal(ids.length, 2);
    assert.ok(!ids.includes(threadId), "not the main thread");
    const keys = await generateKeys({ kind: "rsa", bits: 2048 });
    const csr = await makeCsr({ keys, cn: ID });
    const results = await Promise.all(Array.from({ length: 200 }, () => pool.run({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } })));
    const used = new Set(results.map((r) => r.threadId));
    assert.deepEqual([...used].sort(), [...ids].sort(), "both workers signed");
    // genuine parallelism: some sign on one thread overlaps in wall time with a sign on the other
    const [a, b] = ids.map((id) => results.filter((r) => r.threadId === id));
    const overlap = a!.some((x) => b!.some((y) => x.startedAt < y.endedAt && y.startedAt < x.endedAt));
    assert.ok(overlap, "signs ran concurrently on two threads");
    assert.equal(Object.values(pool.stats()).reduce((s, n) => s + n, 0), 200);

    // close finishes what was accepted, then the threads exit with code 0 (close throws otherwise)
    const late = Array.from({ length: 20 }, () => pool.run({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }));
    await pool.close();
    assert.equal((await Promise.all(late)).length, 20);
    await assert.rejects(pool.run({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }), CaUnavailableError);
  });

  test("a crashed worker fails only its own batch and is replaced", async () => {
    const dir = join(tmp, "pool-crash");
    await initBuiltinCa(dir);
    const loaded = loadCa(dir);
    const pool = await SignPool.start({ caKeyDer: new Uint8Array(loaded.key.export({ format: "der", type: "pkcs8" })), caCertDer: loaded.certDer }, { size: 2 });
    const csr = await makeCsr({ cn: ID });
    const before = pool.threadIds();
    // reach in to crash one thread with a message its handler cannot process
    const victim = (pool as unknown as { slots: Array<{ worker: import("node:worker_threads").Worker }> }).slots[0]!.worker;
    const exited = new Promise((r) => victim.once("exit", r));
    victim.postMessage({ type: "sign", tasks: null });
    await exited;
    const rs = await Promise.all(Array.from({ length: 20 }, () => pool.run({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }).then(() => "ok", (e: Error) => e.name)));
    assert.ok(rs.every((r) => r === "ok" || r === "CaUnavailableError"), rs.join(","));
    // the replacement comes up asynchronously; poll (bounded) until the pool is whole again
    for (let i = 0; i < 200 && pool.threadIds().length < 2; i++) await delay(10);
    assert.equal(pool.threadIds().length, 2);
    assert.notDeepEqual(pool.threadIds().sort(), before.sort());
    const r = await pool.run({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } });
    assert.ok(r.certificatePem.startsWith("-----BEGIN CERTIFICATE-----"));
    await pool.close();
  });
});

