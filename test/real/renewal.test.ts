/**
 * Certificate renewal on real go-choria servers. The daemon provisions three servers with
 * one-day certificates, and its renewal window is a day less 15 s: 15 s after each certificate
 * was issued it is due. The daemon then asks each server at its mTLS home, with a request signed
 * by its client certificate and carrying the provisioning token, to go back to provisioning
 * (`choria_provision#reprovision`); each server rewrites its configuration, restarts in
 * provisioning mode, is provisioned again and arrives home with a new certificate on disk. A
 * request with a wrong token is refused by the server.
 *
 * What the real server needs for this, found here (docs/interop.md, "Renewal"): the
 * choria_provision agent answers at home because the server's provisioning JWT gives it a token;
 * RPC authorization (on by default) needs an action policy allowing the caller; and since
 * reprovision leaves a configuration without identity or security settings, the server comes back
 * from the provisioning defaults (a JWT made with `--default`) under its host name.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { callerFromFiles } from "../../src/arrival/index.js";
import { CertificateLedger, normaliseSerial } from "../../src/ca/index.js";
import { PROVISION_ACTION, PROVISION_AGENT, WRONG_TOKEN_MESSAGE } from "../../src/protocol/index.js";
import { RpcClient, closeNats } from "../../src/transport/index.js";
import type { ArrivalRecord, RenewRecord } from "../../src/types/index.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { EventWatch, OWN_HOST, REAL_SKIP, RealLab, TOKEN, homePolicy, type RealServer } from "../helpers/real-choria.js";
import { Waiters } from "../helpers/waiters.js";

// required (CI): a machine without namespaces fails these tests by name instead of skipping them
const SKIP = REAL_SKIP ?? (process.env.CHORIA_REAL_REQUIRED === "1" ? undefined : OWN_HOST.skip);
function needOwnHosts(): void {
  if (OWN_HOST.skip) throw new Error(`CHORIA_REAL_REQUIRED=1 but ${OWN_HOST.skip}`);
}
const identities = ["renew1", "renew2", "renew3"].map((n) => `${n}.real.example.net`);
const MARGIN_S = 15;
const RATE_PER_MIN = 30;
let lab: RealLab;
let daemon: TestDaemon;
let prov: EventWatch;
let home: EventWatch;
const renews: RenewRecord[] = [];
const arrivals: ArrivalRecord[] = [];
const waiters = new Waiters();

const serialOf = (pem: string) => normaliseSerial(new X509Certificate(pem).serialNumber);
const onDisk = (s: RealServer) => readFileSync(join(s.dir, "ssl", "certificate.pem"), "utf8");

before(async () => {
  if (SKIP) return;
  lab = await RealLab.start();
  // the operator's caller for renewal: an RSA client certificate named as go-choria's allow list wants
  const renewer = await lab.issue("provisioner.mcollective", { client: true, rsa: true, dns: ["provisioner.mcollective"] });
  const pol = lab.writePolicy(
    "renew",
    homePolicy(lab, {
      validityDays: 1,
      // RPC authorization is on at home: reprovision from our caller (and the lab's tester) only
      actionPolicies: { "choria_provision.policy": "policy default deny\nallow\tchoria=provisioner.mcollective choria=tester.mcollective\treprovision\t*\t*\n" },
    }),
  );
  const tls = { ca: lab.caFile, cert: renewer.cert, key: renewer.key };
  daemon = await lab.startDaemon({
    ...pol,
    arrival: { deadline: "60s", homes: [{ name: "lab-home", broker: lab.home.url, tls }] },
    rollout: { trust_initial: true },
    renewal: { window: `${86_400 - MARGIN_S}s`, rate: `${RATE_PER_MIN}/m`, burst: 1, retry_after: "10m", interval: "1s", timeout: "10s" },
  });
  daemon.renewals!.on("renew", (r) => {
    renews.push(r);
    waiters.notify();
  });
  daemon.arrival!.on("arrival", (r) => {
    arrivals.push(r);
    waiters.notify();
  });
  prov = await EventWatch.open(await lab.provisioningConnection());
  home = await EventWatch.open(await lab.homeConnection());
  lab.onStop(() => prov.close());
  lab.onStop(() => home.close());
});

after(async () => {
  await lab?.stop();
});

test("real servers whose certificates enter the window go back to provisioning, are provisioned again and arrive home with a new certificate", { skip: SKIP }, async () => {
  needOwnHosts();
  // reprovision leaves a configuration without identity: only the provisioning defaults (--default) bring such a server back
  const jwt = await lab.makeJwt(join(lab.root, "default.jwt"), ["--default"]);
  const servers = identities.map((id) => lab.startServer(id, { jwt, ownHost: true }));
  const firstCert = new Map<string, string>();
  await home.until((w) => identities.every((id) => w.identities("startup", "server").has(id)), 90_000, "every server at home");
  for (const s of servers) firstCert.set(s.identity, serialOf(onDisk(s)));

  // each renewed, then arrived home after the configure that renewed it
  const renewedAndHome = (id: string): boolean => {
    const r = renews.find((x) => x.identity === id && x.result === "renewed");
    if (!r) return false;
    const configure = daemon.records.find((x) => x.identity === id && x.outcome === "configure" && x.certificate?.serial === r.newSerial);
    return configure !== undefined && arrivals.some((a) => a.identity === id && a.result === "arrived" && a.decision.time === configure.time);
  };
  await waiters.until(
    () => identities.every(renewedAndHome),
    () => undefined,
    150_000,
    () => new Error(`timed out waiting for every server renewed and home again: ${JSON.stringify({ renews: renews.map((r) => `${r.identity}:${r.result}:${r.failure ?? ""}:${r.message ?? ""}`), arrivals: arrivals.map((a) => `${a.identity}:${a.result}`), logs: servers.map((s) => s.log().slice(-1500)) })}`),
  );
  // no more renewals while the evidence is read
  await daemon.stop(5000);

  const ledger = CertificateLedger.open(join(lab.caDir, "ledger.sqlite"));
  try {
    for (const s of servers) {
      const id = s.identity;
      const r = renews.find((x) => x.identity === id && x.result === "renewed")!;
      assert.equal(r.serial, firstCert.get(id), `${id}: the renewal replaced the certificate it first had`);
      const requested = renews.find((x) => x.identity === id && x.result === "requested")!;
      assert.match(requested.message!, /^Restarting after \d+s$/, "the server's own answer to reprovision");
      assert.equal(requested.home, "lab-home");
      // it went back to provisioning: a second startup in provisioning mode, on the provisioning broker
      assert.ok(prov.events.filter((e) => e.identity === id && e.type.endsWith(".startup") && e.component === "provision_mode_server").length >= 2, `${id} started in provisioning mode again`);
      // a new certificate on disk, which the ledger holds beside the first
      const now = serialOf(onDisk(s));
      assert.notEqual(now, firstCert.get(id), `${id} has a new certificate on disk`);
      const held = ledger.byIdentity(id);
      const serials = held.map((e) => e.serial);
      assert.ok(serials.includes(firstCert.get(id)!) && serials.includes(now) && held.length >= 2, `${id}: the ledger holds both (${serials.join(", ")})`);
      assert.equal(new X509Certificate(onDisk(s)).fingerprint256.replace(/:/g, "").toLowerCase(), held.find((e) => e.serial === now)!.fingerprint);
      assert.match(new X509Certificate(onDisk(s)).subject, new RegExp(`CN=${id.replace(/\./g, "\\.")}`));
      assert.equal(s.exitCode(), undefined, `${id} still runs (each restart re-executed it in place)`);
    }
  } finally {
    ledger.close();
  }
  // the bucket spread the requests: one every 2 s at most
  const asked = renews.filter((r) => r.result !== "renewed").map((r) => Date.parse(r.askedAt)).sort((a, b) => a - b);
  for (let i = 1; i < asked.length; i++) assert.ok(asked[i]! - asked[i - 1]! >= 60_000 / RATE_PER_MIN - 5, `requests ${asked[i]! - asked[i - 1]!} ms apart`);
  assert.ok(!renews.some((r) => r.failure === "refused"), "no server refused our request");
});

test("reprovision with a wrong token is refused by the real server, which stays at home", { skip: SKIP }, async () => {
  needOwnHosts();
  // a server at home and not being renewed (the daemon is stopped): its latest arrival is its latest decision's
  const id = identities.find((x) => {
    const last = daemon.records.filter((r) => r.identity === x).at(-1);
    return last?.outcome === "configure" && arrivals.some((a) => a.identity === x && a.result === "arrived" && a.decision.time === last.time);
  });
  assert.ok(id, "a server is at home");
  const nc = await lab.homeConnection();
  const caller = callerFromFiles(lab.client.cert, lab.client.key);
  const rpc = new RpcClient({ nc, identity: "tester.mcollective", callerid: caller.callerid, collective: "mcollective", signer: caller.signer });
  rpc.start();
  try {
    const before = prov.events.filter((e) => e.identity === id && e.component === "provision_mode_server" && e.type.endsWith(".startup")).length;
    const wrong = await rpc.call(id, PROVISION_AGENT, PROVISION_ACTION.reprovision, { token: `not-${TOKEN}` }, { timeoutMs: 10_000 });
    assert.equal(wrong.statuscode, 1);
    assert.equal(wrong.statusmsg, WRONG_TOKEN_MESSAGE);
    // it is still at home: it answers there (discovery), and did not start in provisioning mode
    assert.ok((await lab.discoverHome("mcollective", 2000)).includes(id!), `${id} still answers at home`);
    assert.equal(prov.events.filter((e) => e.identity === id && e.component === "provision_mode_server" && e.type.endsWith(".startup")).length, before);
  } finally {
    await rpc.close();
    await closeNats(nc);
  }
});
