/**
 * The built-in CA as an intermediate under an offline root (openssl, as an organisation's PKI):
 * real go-choria servers provisioned by it join a home broker that trusts only the root. They can
 * only do so by presenting the intermediate with their leaf, which is what configure sends.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { splitCertificates } from "../../src/der/pem.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, type EventWatch, type RealLab } from "../helpers/real-choria.js";
import { startHomeLab } from "./home-lab.js";

const identities = ["int1.real.example.net", "int2.real.example.net"];
let lab: RealLab;
let daemon: TestDaemon;
let home: EventWatch;

before(async () => {
  if (REAL_SKIP) return;
  ({ lab, daemon, home } = await startHomeLab({ intermediate: true }));
});

after(async () => {
  await lab?.stop();
});

test("real servers with a certificate from an intermediate CA join a home that trusts only the offline root", { skip: REAL_SKIP }, async () => {
  // the home broker's trust is the root alone
  const homeTrust = splitCertificates(readFileSync(lab.homeTrustFile, "utf8")).map((p) => new X509Certificate(p));
  assert.deepEqual(homeTrust.map((c) => c.subject), ["O=Lab Org\nCN=Lab Offline Root"]);

  const servers = identities.map((id) => lab.startServer(id));
  await home.until((w) => identities.every((id) => w.identities("startup", "server").has(id)), 90_000, "every server's startup event on the home broker");
  assert.deepEqual(await lab.discoverHome("mcollective"), identities);

  for (const s of servers) {
    const onDisk = splitCertificates(readFileSync(join(s.dir, "ssl", "certificate.pem"), "utf8")).map((p) => new X509Certificate(p));
    assert.deepEqual(onDisk.map((c) => c.subject), [`CN=${s.identity}`, "CN=Lab Issuing CA"], "leaf, then the intermediate");
    const ca = splitCertificates(readFileSync(join(s.dir, "ssl", "ca.pem"), "utf8")).map((p) => new X509Certificate(p));
    assert.deepEqual(ca.map((c) => c.subject), ["CN=Lab Issuing CA", "O=Lab Org\nCN=Lab Offline Root"], "issuing CA first, root last");
    assert.ok(onDisk[0]!.checkIssued(onDisk[1]!) && onDisk[1]!.checkIssued(homeTrust[0]!), "leaf -> intermediate -> root");
  }
});
