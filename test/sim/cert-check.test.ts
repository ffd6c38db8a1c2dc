import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkDeliveredCertificate } from "../../src/sim/cert-check.js";

// Certificates made by openssl, an implementation independent of ours, with a real chain:
// root CA -> intermediate CA -> leaf for the node's key.
const ID = "n1.example.net";

describe("simulated node's check of a delivered certificate", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-cert-"));
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let root: string, inter: string, notCa: string, leaf: string, leafByNotCa: string, nodeKeyPem: string;

  before(() => {
    writeFileSync(f("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
    writeFileSync(f("noca.ext"), "basicConstraints=critical,CA:FALSE\n");
    writeFileSync(f("leaf.ext"), `basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:${ID},IP:10.0.0.1\n`);
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key", "-out", "root.pem", "-subj", "/O=Acme/CN=Root CA", "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE");
    for (const [name, ext] of [["inter", "ca.ext"], ["notca", "noca.ext"]]) {
      ssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "7", "-days", "30", "-extfile", ext!, "-out", `${name}.pem`);
    }
    ssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj", `/C=GB/CN=${ID}`);
    ssl("x509", "-req", "-in", "node.csr", "-CA", "inter.pem", "-CAkey", "inter.key", "-set_serial", "0x0123456789abcdef", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf.pem");
    ssl("x509", "-req", "-in", "node.csr", "-CA", "notca.pem", "-CAkey", "notca.key", "-set_serial", "9", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf-notca.pem");
    [root, inter, notCa, leaf, leafByNotCa, nodeKeyPem] = ["root.pem", "inter.pem", "notca.pem", "leaf.pem", "leaf-notca.pem", "node.key"].map((n) => readFileSync(f(n), "utf8")) as [string, string, string, string, string, string];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const nodeKey = () => createPublicKey(nodeKeyPem);
  const kinds = (r: ReturnType<typeof checkDeliveredCertificate>) => r.findings.map((x) => x.kind);

  test("leaf + intermediate chaining to the delivered root: no findings, and the record matches OpenSSL's reading", () => {
    const r = checkDeliveredCertificate({ identity: ID, certificate: leaf + inter, ca: root, publicKey: nodeKey() });
    assert.deepEqual(r.findings, []);
    const x = new X509Certificate(leaf);
    assert.deepEqual(r.record, { subject: x.subject.split("\n").join(", "), issuer: x.issuer.split("\n").join(", "), serial: x.serialNumber, validTo: new Date(x.validTo).toISOString() });
    // the node's key as SPKI bytes is the same answer as the KeyObject
    const spki = new Uint8Array(nodeKey().export({ format: "der", type: "spki" }));
    assert.deepEqual(checkDeliveredCertificate({ identity: ID, certificate: leaf + inter, ca: root, publicKey: spki }).findings, []);
  });

  test("the leaf without its intermediate does not verify against the root", () => {
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leaf, ca: root, publicKey: nodeKey() })), ["certificate_not_signed_by_ca"]);
    // the intermediate delivered as the CA works on its own
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leaf, ca: inter, publicKey: nodeKey() })), []);
  });

  test("an issuer that is not a CA does not count, even though its signature verifies", () => {
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leafByNotCa + notCa, ca: root, publicKey: nodeKey() })), ["certificate_not_signed_by_ca"]);
  });

  test("expired, someone else's key, someone else's name, not PEM", () => {
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leaf + inter, ca: root, publicKey: nodeKey(), now: Date.now() + 60 * 86_400_000 })), ["certificate_not_valid_now"]);
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leaf + inter, ca: root, publicKey: createPublicKey(readFileSync(f("inter.key"))) })), ["certificate_key_mismatch"]);
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: "other.example.net", certificate: leaf + inter, ca: root, publicKey: nodeKey() })), ["certificate_identity_mismatch"]);
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: "nope", ca: root, publicKey: nodeKey() })), ["certificate_not_pem"]);
    assert.deepEqual(kinds(checkDeliveredCertificate({ identity: ID, certificate: leaf + inter, ca: "nope", publicKey: nodeKey() })), ["ca_not_pem"]);
    // a corrupted certificate is never accepted and never a crash, wherever the damage is
    const lines = leaf.trim().split("\n");
    for (let i = 1; i < lines.length - 1; i++) {
      const broken = [...lines.slice(0, i), "A".repeat(lines[i]!.length), ...lines.slice(i + 1)].join("\n") + "\n";
      const found = kinds(checkDeliveredCertificate({ identity: ID, certificate: broken + inter, ca: root, publicKey: nodeKey() }));
      assert.ok(found.length >= 1, `line ${i} damaged: ${found.join(",")}`);
    }
  });
});
