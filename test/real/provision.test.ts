/**
 * Real go-choria servers, end to end: 20 servers in provisioning mode on a TLS-offering
 * provisioning broker; the daemon provisions them with PKI on and the built-in CA; each restarts
 * into its real home, a broker that admits only verified mutual TLS with certificates from our
 * CA. Arrival is proven on the home broker: each server's own `startup` lifecycle event
 * (component `server`), read by a client holding a certificate from the same CA.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, type EventWatch, type RealLab } from "../helpers/real-choria.js";
import { startHomeLab } from "./home-lab.js";

const N = 20;
const identities = Array.from({ length: N }, (_, i) => `node${String(i + 1).padStart(2, "0")}.real.example.net`);
let lab: RealLab;
let daemon: TestDaemon;
let home: EventWatch;

before(async () => {
  if (REAL_SKIP) return;
  ({ lab, daemon, home } = await startHomeLab());
});

after(async () => {
  await lab?.stop();
});

test("20 real servers are provisioned and each arrives at its mTLS home with the certificate we signed", { skip: REAL_SKIP }, async () => {
  const servers = identities.map((id) => lab.startServer(id));
  await home.until((w) => identities.every((id) => w.identities("startup", "server").has(id)), 90_000, "every server's startup event on the home broker");

  // exactly the expected identities arrived: nothing else started at home
  assert.deepEqual([...home.identities("startup", "server")].sort(), identities);

  // and they answer a signed discovery on their main collective there: the collective, the
  // certificate and key they were given and protocol security with our CA all work
  assert.deepEqual(await lab.discoverHome("mcollective"), identities);

  const byId = new Map(daemon.records.filter((r) => r.outcome === "configure").map((r) => [r.identity, r]));
  for (const s of servers) {
    const rec = byId.get(s.identity);
    assert.ok(rec, `${s.identity} has a configure record`);
    assert.equal(s.exitCode(), undefined, `${s.identity} is still running (restart re-executes in place)`);
    // the server's configuration is ours, with provisioning off and our home broker
    const conf = readFileSync(join(s.dir, "server.conf"), "utf8");
    assert.match(conf, /^plugin\.choria\.server\.provision=false$/m);
    assert.match(conf, new RegExp(`^plugin\\.choria\\.middleware_hosts=${lab.home.url.replace(/[.:/]/g, "\\$&")}$`, "m"));
    assert.match(conf, new RegExp(`^identity=${s.identity.replace(/\./g, "\\.")}$`, "m"));
    // the certificate on disk is the one the audit says we issued, for this identity
    const cert = new X509Certificate(readFileSync(join(s.dir, "ssl", "certificate.pem")));
    assert.equal(cert.serialNumber.toLowerCase().replace(/^0+/, ""), rec.certificate!.serial.toLowerCase().replace(/^0+/, ""));
    assert.match(cert.subject, new RegExp(`CN=${s.identity.replace(/\./g, "\\.")}`));
    assert.ok(cert.verify(new X509Certificate(readFileSync(lab.caFile)).publicKey), "signed by our CA");
  }
});
