/**
 * The built-in CA as an intermediate under an offline root made and operated with openssl, as an
 * organisation's PKI would; proven with a real TLS handshake against a server that trusts only
 * the root.
 */
import { test, describe, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { ChainError, importIntermediate, initBuiltinCa, openBuiltinCa } from "../../src/ca/index.js";
import { splitCertificates as splitCertificatesForTest } from "../../src/der/pem.js";

const tmp = mkdtempSync(join(tmpdir(), "intermediate-ca-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** An offline root: self-signed, pathlen as given, keyCertSign+cRLSign. */
function makeRoot(name: string, pathlen: number): { cert: string; key: string } {
  const cert = join(tmp, `${name}.pem`);
  const key = join(tmp, `${name}.key`);
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", `/O=Example Org/CN=${name}`, "-days", "30",
    "-addext", `basicConstraints=critical,CA:TRUE,pathlen:${pathlen}`, "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  return { cert, key };
}

/** What the root's owner does with our ca.csr. */
function rootSigns(root: { cert: string; key: string }, csr: string, out: string, ext = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"): string {
  const extFile = `${out}.ext`;
  writeFileSync(extFile, ext);
  openssl("x509", "-req", "-in", csr, "-CA", root.cert, "-CAkey", root.key, "-days", "10", "-extfile", extFile, "-out", out);
  return out;
}

function nodeKeyAndCsr(name: string): { keyPem: string; csrPem: string } {
  const key = join(tmp, `${name}.key`);
  const csr = join(tmp, `${name}.csr`);
  openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", `/CN=${name}`);
  return { keyPem: readFileSync(key, "utf8"), csrPem: readFileSync(csr, "utf8") };
}

async function pendingCa(name: string): Promise<string> {
  const dir = join(tmp, name);
  const r = await initBuiltinCa(dir, { intermediate: true, commonName: `${name} issuing CA` });
  assert.equal(r.csrPath, join(dir, "ca.csr"));
  assert.ok(!existsSync(r.certPath), "no certificate before the root signs");
  return dir;
}

function importFiles(dir: string, cert: string, chain: string) {
  return importIntermediate(dir, { certPem: readFileSync(cert, "utf8"), chainPem: readFileSync(chain, "utf8"), certFile: cert, chainFile: chain });
}

describe("intermediate CA", () => {
  const root = { cert: "", key: "" };
  let dir = "";
  before(async () => {
    Object.assign(root, makeRoot("Offline Root", 1));
    dir = await pendingCa("good");
    importFiles(dir, rootSigns(root, join(dir, "ca.csr"), join(tmp, "good-signed.pem")), root.cert);
  });

  test("the CSR for the root carries the key and the name, and opening before import says what to do", async () => {
    const d = await pendingCa("pending");
    const csr = readFileSync(join(d, "ca.csr"), "utf8");
    assert.match(openssl("req", "-in", join(d, "ca.csr"), "-noout", "-verify", "-subject"), /subject=CN\s*=\s*pending issuing CA/);
    assert.match(csr, /BEGIN CERTIFICATE REQUEST/);
    await assert.rejects(openBuiltinCa(d, { workers: 1 }), /has no certificate yet: have the root sign .*ca\.csr.*ca import/);
  });

  test("a node with leaf + intermediate completes mutual TLS with a server that trusts only the root", async () => {
    const ca = await openBuiltinCa(dir, { workers: 1 });
    try {
      const server = nodeKeyAndCsr("localhost");
      const client = nodeKeyAndCsr("node1.example.net");
      const s = await ca.sign({ identity: "localhost", csrPem: server.csrPem, profile: { validityDays: 1, sans: ["127.0.0.1"] } });
      const c = await ca.sign({ identity: "node1.example.net", csrPem: client.csrPem, profile: { validityDays: 1, sans: [] } });
      // configure.ca: issuing CA first, root last; configure.certificate: leaf, then the intermediate
      const caChain = splitCertificatesForTest(c.caPem).map((p) => new X509Certificate(p));
      assert.deepEqual(caChain.map((x) => x.subject), ["CN=good issuing CA", "O=Example Org\nCN=Offline Root"]);
      const leafChain = splitCertificatesForTest(c.certificatePem).map((p) => new X509Certificate(p));
      assert.deepEqual(leafChain.map((x) => x.subject), ["CN=node1.example.net", "CN=good issuing CA"]);
      assert.equal(c.fingerprint, leafChain[0]!.fingerprint256.replace(/:/g, "").toLowerCase(), "the fingerprint is the leaf's");

      const rootOnly = readFileSync(root.cert, "utf8");
      const handshake = async (clientCert: string) => {
        const srv = tls.createServer({ key: server.keyPem, cert: s.certificatePem, ca: rootOnly, requestCert: true, rejectUnauthorized: false });
        srv.listen(0, "127.0.0.1");
        await once(srv, "listening");
        const accepted = once(srv, "secureConnection");
        const sock = tls.connect({ host: "127.0.0.1", port: (srv.address() as AddressInfo).port, servername: "localhost", key: client.keyPem, cert: clientCert, ca: rootOnly });
        try {
          await once(sock, "secureConnect");
          const [peer] = (await accepted) as [tls.TLSSocket];
          return { clientAuthorized: sock.authorized, serverAuthorized: peer.authorized, serverError: peer.authorizationError, peerCn: peer.getPeerCertificate().subject?.CN };
        } finally {
          sock.destroy();
          srv.close();
        }
      };
      const full = await handshake(c.certificatePem);
      assert.deepEqual(full, { clientAuthorized: true, serverAuthorized: true, serverError: null, peerCn: "node1.example.net" });
      // the same leaf without its intermediate does not verify against the root: the chain is what makes it work
      const bare = await handshake(splitCertificatesForTest(c.certificatePem)[0]!);
      assert.equal(bare.serverAuthorized, false);
      assert.match(String(bare.serverError), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    } finally {
      await ca.close();
    }
  });

  test("import refuses, naming the file: a certificate for another key", async () => {
    const d = await pendingCa("other-key");
    const other = await pendingCa("other-key-2");
    const signed = rootSigns(root, join(other, "ca.csr"), join(tmp, "other-signed.pem"));
    assert.throws(() => importFiles(d, signed, root.cert), (e: Error) => e instanceof ChainError && /other-signed\.pem: the certificate is not for this CA's key/.test(e.message));
    assert.ok(!existsSync(join(d, "ca.pem")), "nothing written");
  });

  test("import refuses a certificate that is not a CA, or may not sign certificates", async () => {
    const d = await pendingCa("not-ca");
    const leaf = rootSigns(root, join(d, "ca.csr"), join(tmp, "not-ca.pem"), "basicConstraints=critical,CA:FALSE\n");
    assert.throws(() => importFiles(d, leaf, root.cert), /not-ca\.pem: not a CA certificate/);
    const noSign = rootSigns(root, join(d, "ca.csr"), join(tmp, "no-sign.pem"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,cRLSign\n");
    assert.throws(() => importFiles(d, noSign, root.cert), /no-sign\.pem: keyUsage does not allow certificate signing/);
  });

  test("import refuses a root whose path length forbids an intermediate", async () => {
    const tight = makeRoot("Tight Root", 0);
    const d = await pendingCa("tight");
    const signed = rootSigns(tight, join(d, "ca.csr"), join(tmp, "tight-signed.pem"));
    assert.throws(() => importFiles(d, signed, tight.cert), /Tight Root.*path length 0 does not allow the 1 CA certificate/s);
  });

  test("import refuses a chain that does not reach a self-signed root, or is in the wrong order", async () => {
    const mid = makeRoot("Unrelated Root", 1);
    const d = await pendingCa("chain");
    const signed = rootSigns(root, join(d, "ca.csr"), join(tmp, "chain-signed.pem"));
    // the wrong root
    assert.throws(() => importFiles(d, signed, mid.cert), /is not signed by the next certificate \(O=Example Org, CN=Unrelated Root\)/);
    // a chain that stops at the intermediate itself (not self-signed)
    assert.throws(() => importFiles(d, signed, signed), /not self-signed|is not signed by the next/);
    // root first, then something after it
    const both = join(tmp, "root-then-other.pem");
    writeFileSync(both, readFileSync(root.cert, "utf8") + readFileSync(mid.cert, "utf8"));
    assert.throws(() => importFiles(d, signed, both), /self-signed but more certificates follow it/);
  });

  test("a chain file edited by hand is caught when the CA opens", async () => {
    const d = await pendingCa("edited");
    importFiles(d, rootSigns(root, join(d, "ca.csr"), join(tmp, "edited-signed.pem")), root.cert);
    writeFileSync(join(d, "chain.pem"), readFileSync(makeRoot("Swapped Root", 1).cert, "utf8"));
    await assert.rejects(openBuiltinCa(d, { workers: 1 }), /CA chain in .* does not verify: .*not signed by the next certificate/);
  });
});
