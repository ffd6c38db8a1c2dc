import "reflect-metadata";
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPublicKey } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { DerError, children, oidString, readRoot, readTlv, stringValue, timeValue, TAGS } from "../../src/der/reader.js";
import { nameString, readCertificateDer, readCsrDer } from "../../src/der/x509.js";
import { initBuiltinCa, openBuiltinCa } from "../../src/ca/index.js";
import { decodePem } from "../../src/der/pem.js";
import { makeCsr, type KeySpec } from "../ca/csr-fixtures.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const der = (pem: string): Uint8Array => decodePem(pem)[0]!.der;
const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

describe("DER reader: strict on untrusted input", () => {
  test("reads short and long definite lengths", () => {
    assert.deepEqual(readTlv(b(0x04, 0x02, 1, 2), 0), { tag: 0x04, start: 0, contentStart: 2, end: 4 });
    const long = new Uint8Array(3 + 200);
    long.set([0x04, 0x81, 200]);
    assert.equal(readTlv(long, 0).end, 203);
  });

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ["indefinite length", b(0x30, 0x80, 0, 0), /indefinite length/],
    ["non-minimal long form for a short length", b(0x04, 0x81, 0x05, 1, 2, 3, 4, 5), /non-minimal length/],
    ["length with a leading zero byte", b(0x04, 0x82, 0x00, 0x85, ...new Array(0x85).fill(0)), /non-minimal length/],
    ["content longer than the buffer", b(0x04, 0x05, 1, 2), /overruns/],
    ["truncated header", b(0x04), /truncated/],
    ["multi-byte tag", b(0x1f, 0x81, 0x01, 0x00), /multi-byte tag/],
  ];
  for (const [what, bytes, re] of bad) {
    test(`refuses ${what}`, () => assert.throws(() => readTlv(bytes, 0), (e: Error) => e instanceof DerError && re.test(e.message)));
  }

  test("a child overrunning its parent and trailing bytes after the root are errors", () => {
    // SEQUENCE of 3 bytes holding an OCTET STRING that claims 4
    const seq = b(0x30, 0x03, 0x04, 0x04, 1, 2, 3);
    assert.throws(() => children(seq, readTlv(seq, 0)), /overruns its container/);
    assert.throws(() => readRoot(b(0x30, 0x00, 0x00), TAGS.sequence), /1 trailing bytes/);
    assert.throws(() => readRoot(b(0x31, 0x00), TAGS.sequence), /expected sequence/);
  });

  test("object identifiers decode as dotted strings; non-minimal and truncated arcs are refused", () => {
    const oid = (...c: number[]) => oidString(b(0x06, c.length, ...c), readTlv(b(0x06, c.length, ...c), 0));
    assert.equal(oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b), "1.2.840.113549.1.1.11");
    assert.equal(oid(0x55, 0x04, 0x03), "2.5.4.3");
    assert.equal(oid(0x2b, 0x65, 0x70), "1.3.101.112");
    assert.throws(() => oid(0x55, 0x80, 0x03), /non-minimal oid/);
    assert.throws(() => oid(0x55, 0x84), /truncated oid/);
  });

  test("strings by type; invalid UTF-8 is an error, not a replacement character", () => {
    const s = (tag: number, ...c: number[]) => stringValue(b(tag, c.length, ...c), readTlv(b(tag, c.length, ...c), 0));
    assert.equal(s(TAGS.utf8String, 0xc3, 0xa9), "é");
    assert.equal(s(TAGS.printableString, 0x41, 0x42), "AB");
    assert.equal(s(TAGS.bmpString, 0x00, 0xe9), "é");
    assert.throws(() => s(TAGS.utf8String, 0xc3), /invalid UTF-8/);
    assert.throws(() => s(TAGS.integer, 0x01), /not a string/);
  });

  test("times: UTCTime windows 1950-2049, GeneralizedTime, anything else refused", () => {
    const t = (tag: number, text: string) => {
      const bytes = b(tag, text.length, ...Buffer.from(text, "latin1"));
      return timeValue(bytes, readTlv(bytes, 0));
    };
    assert.equal(t(TAGS.utcTime, "491231235959Z"), Date.UTC(2049, 11, 31, 23, 59, 59));
    assert.equal(t(TAGS.utcTime, "500101000000Z"), Date.UTC(1950, 0, 1));
    assert.equal(t(TAGS.generalizedTime, "20500101000000Z"), Date.UTC(2050, 0, 1));
    assert.throws(() => t(TAGS.utcTime, "4912312359Z"), /invalid time/);
    assert.throws(() => t(TAGS.generalizedTime, "20500101000000+0100"), /invalid time/);
  });
});

describe("X.509 readers agree with independent parsers", () => {
  const keys: KeySpec[] = [{ kind: "rsa", bits: 2048 }, { kind: "ec", curve: "P-256" }, { kind: "ec", curve: "P-384" }, { kind: "ed25519" }];
  for (const key of keys) {
    test(`CSR with a ${JSON.stringify(key)} key, subject attributes and SANs: same fields as @peculiar/x509`, async () => {
      const pem = await makeCsr({ key, cn: "n1.example.net", subject: { C: "GB", L: "London", O: "Acme", OU: "Ops" }, dns: ["n1.example.net", "alias.example.net"], ips: ["192.0.2.7", "2001:db8::1"] });
      const mine = readCsrDer(der(pem));
      const ref = new x509.Pkcs10CertificateRequest(pem);
      assert.equal(nameString(mine.subject), ref.subject);
      assert.deepEqual(Buffer.from(mine.spki.der), Buffer.from(ref.publicKey.rawData));
      assert.deepEqual(Buffer.from(mine.tbs), Buffer.from(ref["tbs"]));
      assert.deepEqual(mine.sans, ["n1.example.net", "alias.example.net", "192.0.2.7", "2001:db8::1"]);
      // node agrees on the key the SPKI holds
      assert.equal(createPublicKey({ key: Buffer.from(mine.spki.der), format: "der", type: "spki" }).asymmetricKeyType, key.kind);
    });
  }

  test("a CSR with a bit flipped in its structure is an error, never a wrong answer", async () => {
    const good = der(await makeCsr({ key: { kind: "ec", curve: "P-256" } }));
    let threw = 0;
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i]! ^= 0x80;
      try {
        const r = readCsrDer(bad);
        // a flip inside a value (key, signature, string bytes) can still parse; the structure must
        // then be exactly the same shape
        assert.equal(r.subject.length, readCsrDer(good).subject.length);
      } catch (e) {
        assert.ok(e instanceof DerError, `byte ${i}: only DerError, got ${String(e)}`);
        threw++;
      }
    }
    assert.ok(threw > 20, `flips in tags and lengths are refused (${threw} of ${good.length})`);
  });

  test("certificates from the built-in CA: same fields as node's X509Certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "der-ca-"));
    try {
      await initBuiltinCa(dir, { key: "ecdsa" });
      const ca = await openBuiltinCa(dir, { workers: 1 });
      try {
        const csr = await makeCsr({ key: { kind: "rsa", bits: 2048 }, cn: "n2.example.net" });
        const signed = await ca.sign({ identity: "n2.example.net", csrPem: csr, profile: { validityDays: 30, sans: ["10.1.2.3", "extra.example.net"] } });
        for (const pem of [signed.certificatePem, ca.caCertificatePem]) {
          const mine = readCertificateDer(der(pem));
          const ref = new X509Certificate(pem);
          assert.equal(nameString(mine.subject), ref.subject.split("\n").join(", "));
          assert.equal(nameString(mine.issuer), ref.issuer.split("\n").join(", "));
          assert.equal(mine.serial, ref.serialNumber);
          assert.equal(mine.notBefore, Date.parse(ref.validFrom));
          assert.equal(mine.notAfter, Date.parse(ref.validTo));
          assert.equal(mine.isCa, ref.ca);
          assert.deepEqual(Buffer.from(mine.spki.der), ref.publicKey.export({ format: "der", type: "spki" }));
          const refSans = (ref.subjectAltName ?? "").split(", ").filter(Boolean).map((s) => s.replace(/^(DNS|IP Address):/, ""));
          assert.deepEqual(mine.sans, refSans);
        }
        const leaf = readCertificateDer(der(signed.certificatePem));
        const root = readCertificateDer(der(ca.caCertificatePem));
        assert.deepEqual(Buffer.from(leaf.issuerDer), Buffer.from(root.subjectDer), "issuer bytes equal the CA subject bytes");
      } finally {
        await ca.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
