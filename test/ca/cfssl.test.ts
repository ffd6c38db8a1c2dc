import "reflect-metadata";
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type AddressInfo, type Socket } from "node:net";
import * as x509 from "@peculiar/x509";
import { createCfsslSigner, initBuiltinCa, CaRejectedError, CaUnavailableError, CsrRefusedError } from "../../src/ca/index.js";
import { freePort, startCfssl, type CfsslServer } from "./cfssl-server.js";
import { makeCsr } from "./csr-fixtures.js";

const ID = "node1.example.net";
const tmp = mkdtempSync(join(tmpdir(), "cfssl-"));
let server: CfsslServer;
let caPem: string;
let csr: string;

before(async () => {
  // cfssl reads the PKCS#8 key our own `ca init` writes
  const { certPath, keyPath } = await initBuiltinCa(join(tmp, "ca"), { key: "rsa", commonName: "cfssl test CA" });
  caPem = readFileSync(certPath, "utf8");
  server = await startCfssl(certPath, keyPath);
  csr = await makeCsr({ cn: ID });
});
after(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("cfssl signer against a real cfssl serve", () => {
  test("signs: identity and policy SANs become the certificate's SANs, chain comes from /info", async () => {
    const signer = createCfsslSigner({ url: server.url, timeoutMs: 5000 });
    assert.equal(signer.kind, "cfssl");
    const r = await signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 30, sans: ["10.0.0.7", "alt.example.net"] } });
    const cert = new x509.X509Certificate(r.certificatePem);
    assert.equal(cert.subject, `CN=${ID}`);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON().map((n) => `${n.type}:${n.value}`).sort();
    assert.deepEqual(names, ["dns:alt.example.net", `dns:${ID}`, "ip:10.0.0.7"]);
    assert.equal(new x509.X509Certificate(r.caPem).subject, "CN=cfssl test CA");
    assert.ok(await cert.verify({ publicKey: new x509.X509Certificate(caPem).publicKey, signatureOnly: true }));
    assert.equal(r.serial, cert.serialNumber.toLowerCase());
    assert.match(r.fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(new Date(r.notAfter).getTime() > Date.now());
    await signer.close();
  });

  test("a configured chain is used as is", async () => {
    const signer = createCfsslSigner({ url: server.url, caPem: "-----BEGIN CERTIFICATE-----\nconfigured\n-----END CERTIFICATE-----\n" });
    const r = await signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 30, sans: [] } });
    assert.match(r.caPem, /configured/);
  });

  test("a bad CSR is refused locally and never sent", async () => {
    const signer = createCfsslSigner({ url: server.url });
    await assert.rejects(signer.sign({ identity: ID, csrPem: "not pem", profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CsrRefusedError && e.code === "not_pem");
  });

  test("cfssl saying no (HTTP 400, success:false) → CaRejectedError carrying cfssl's error", async () => {
    // this cfssl build cannot verify Ed25519 CSR signatures, which our policy accepts
    const ed = await makeCsr({ cn: ID, key: { kind: "ed25519" } });
    const signer = createCfsslSigner({ url: server.url, caPem });
    await assert.rejects(signer.sign({ identity: ID, csrPem: ed, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CaRejectedError && /HTTP 400/.test(e.message) && /9300/.test(e.message));
  });

  test("cfssl down → CaUnavailableError", async () => {
    const port = await freePort();
    const signer = createCfsslSigner({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    await assert.rejects(signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CaUnavailableError && /unreachable/.test(e.message));
  });

  test("cfssl not answering → CaUnavailableError after the timeout", async () => {
    // a listener that accepts and never answers: what a hung CA looks like from here (it used to
    // SIGSTOP the real cfssl, which once answered anyway on a loaded CI machine)
    const held: Socket[] = [];
    const hole = createServer((sock) => held.push(sock));
    await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
    try {
      const { port } = hole.address() as AddressInfo;
      const signer = createCfsslSigner({ url: `http://127.0.0.1:${port}`, timeoutMs: 300, caPem });
      const t0 = Date.now();
      await assert.rejects(signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CaUnavailableError && /300 ms/.test(e.message));
      assert.ok(Date.now() - t0 < 3000, "gave up near the timeout");
      assert.ok(held.length >= 1, "the request reached the listener");
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => hole.close(r));
    }
  });

});
