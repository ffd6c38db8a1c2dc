import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import * as pkijs from "pkijs";
import { createCaCertificate, LeafIssuer } from "../../src/ca/issue.js";
import { parseCsr } from "../../src/ca/csr-inspect.js";
import { parseDer } from "../../src/ca/x509-util.js";
import { derLength, derTime } from "../../src/der/writer.js";
import { makeCsr } from "./csr-fixtures.js";

const ID = "node1.example.net";

describe("leaf issuing", () => {
  test("the hand-spliced DER is exactly what pkijs would encode (canonical round trip)", async () => {
    for (const curveOrRsa of ["ec", "rsa"] as const) {
      const { privateKey } = curveOrRsa === "ec" ? generateKeyPairSync("ec", { namedCurve: "P-384" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
      const ca = createCaCertificate(privateKey, { commonName: "Round Trip CA", validityDays: 30 });
      const leaf = new LeafIssuer(privateKey, ca.der).issue(parseCsr(await makeCsr({ cn: ID })), ID, { validityDays: 5, sans: ["192.0.2.1", "x.example.net"] });
      const cert = new pkijs.Certificate({ schema: parseDer(leaf.der) });
      const fresh = new Uint8Array(cert.encodeTBS().toBER(false));
      assert.deepEqual(Buffer.from(fresh), Buffer.from(cert.tbsView), "TBS re-encodes byte for byte");
      assert.ok(new X509Certificate(leaf.der).verify(new X509Certificate(ca.der).publicKey), `${curveOrRsa} CA signature verifies`);
    }
  });

  test("validity: whole seconds, backdated notBefore, clamped to the CA's notAfter", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const at = new Date("2030-01-01T12:00:00.750Z");
    const ca = createCaCertificate(privateKey, { commonName: "Short CA", validityDays: 10, now: at });
    const issuer = new LeafIssuer(privateKey, ca.der);
    const csr = parseCsr(await makeCsr({ cn: ID }));
    const leaf = issuer.issue(csr, ID, { validityDays: 1, sans: [] }, at);
    const x = new X509Certificate(leaf.der);
    assert.equal(new Date(x.validFrom).toISOString(), "2030-01-01T11:55:00.000Z");
    assert.equal(leaf.notAfter, "2030-01-02T12:00:00.000Z");
    assert.equal(new Date(x.validTo).toISOString(), leaf.notAfter);
    const long = issuer.issue(csr, ID, { validityDays: 365, sans: [] }, at);
    assert.equal(long.notAfter, new Date(new X509Certificate(ca.der).validTo).toISOString(), "clamped to the CA");
  });

  test("times from 2050 use GeneralizedTime; DER lengths use long form past 127", () => {
    assert.deepEqual(Buffer.from(derTime(new Date("2049-12-31T23:59:59Z"))).toString("latin1").slice(2), "491231235959Z");
    assert.equal(derTime(new Date("2049-12-31T23:59:59Z"))[0], 0x17);
    const g = derTime(new Date("2050-01-01T00:00:00Z"));
    assert.equal(g[0], 0x18);
    assert.equal(Buffer.from(g).toString("latin1").slice(2), "20500101000000Z");
    assert.deepEqual([...derLength(127)], [127]);
    assert.deepEqual([...derLength(128)], [0x81, 128]);
    assert.deepEqual([...derLength(300)], [0x82, 0x01, 0x2c]);
  });

  test("profile SANs that are neither DNS names nor IPs are an error, not a broken certificate", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ca = createCaCertificate(privateKey, { commonName: "CA", validityDays: 10 });
    const csr = parseCsr(await makeCsr({ cn: ID }));
    assert.throws(() => new LeafIssuer(privateKey, ca.der).issue(csr, ID, { validityDays: 1, sans: ["has space.example"] }), /valid DNS name/);
    assert.throws(() => new LeafIssuer(privateKey, ca.der).issue(csr, ID, { validityDays: 1, sans: ["ünï.example"] }), /valid DNS name/);
  });
});
