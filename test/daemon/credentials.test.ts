import "reflect-metadata";
/**
 * Issue 7 end to end: the real daemon assembly (daemon/start.ts) against a real nats-server and
 * simulated nodes that hold a provisioning JWT.
 *   - features.jwt: the JWT is verified before anything else, its claims (without secrets) reach
 *     policies as jwt.* and the decision records; a JWT signed by another key is refused
 *   - a legacy helper's private key reaches the node only encrypted to its ECDH key; the node
 *     decrypts it and checks it matches the certificate
 *   - features.ed25519: gen25519 + a server JWT that verifies with the signer's public key and
 *     carries the policy's serverClaims, over protocol v1 and over protocol v2
 * Every test also checks that no secret reaches the audit log or the daemon's own log.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync, verify, webcrypto } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import * as x509 from "@peculiar/x509";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { identityOf, startFleet, type Fleet, type FleetOptions } from "../../src/sim/index.js";
import { resolveSettings, type ConfigFile } from "../../src/config/index.js";
import { makeBuiltinCa, makeTestCa } from "../helpers/ca.js";
import { startDaemon, type DaemonHandle } from "../../src/daemon/start.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { edPair, makeJwt, nowS, rsaPair } from "../credentials/helpers.js";

const TOKEN = "cht-s3cret-token";
/** one built-in CA for the daemons that run pki (made once: key generation is the slow part) */
let caDir: string;
before(async () => {
  caDir = await makeBuiltinCa("ecdsa");
});
const BROKER_PASSWORD = "chpwd-broker-s3cret";

/**
 * a small policy that reads the JWT: a condition on jwt.ou and templates from jwt.*; its
 * serverClaims only matter to the features.ed25519 runs, which sign them into the server JWT
 */
const JWT_POLICY = `apiVersion: choria-provisioner/v1
kind: Policy
metadata:
  name: jwt-e2e
  version: "1"
brokerSets:
  main: [nats://broker.example.net:4222]
defaults:
  brokerSet: main
  configuration:
    loglevel: info
    plugin.choria.provisioning_url: "{{ jwt.chu }}"
  certificate:
    validityDays: 30
  serverClaims:
    permissions: { submission: true }
rules:
  - name: acme-organisation
    description: nodes whose provisioning JWT names the acme organisation join its collective
    conditions:
      all:
        - { fact: jwt.ou, operator: equal, value: acme }
    then:
      configuration:
        collectives: acme
        plugin.choria.organization: "{{ jwt.ou }}"
      serverClaims:
        ou: "{{ jwt.ou }}"
        pub_subjects: ["choria.node_metadata.{{ identity }}"]
        permissions: { streams: true }
`;

interface Harness {
  srv: LocalNatsServer;
  fleet: Fleet;
  daemon: DaemonHandle;
  records: DecisionRecord[];
  work: string;
  /** everything the daemon logged, at debug level */
  logText(): string;
  audit(): string;
  metrics(): Promise<string>;
  waitRecords(pred: (latest: Map<string, DecisionRecord>) => boolean, timeoutMs: number, what: string): Promise<Map<string, DecisionRecord>>;
  stop(): Promise<void>;
}

function latest(records: DecisionRecord[]): Map<string, DecisionRecord> {
  const m = new Map<string, DecisionRecord>();
  for (const r of records) m.set(r.identity, r);
  return m;
}

async function harness(fleetOpts: Omit<FleetOptions, "servers">, cfg: (work: string) => ConfigFile): Promise<Harness> {
  const work = mkdtempSync(join(tmpdir(), "cp-cred-"));
  const srv = await startNatsServer();
  const fleet = await startFleet({ servers: srv.url, seed: 5, restartDelayMs: 50, token: TOKEN, version: "0.29.4", ...fleetOpts });
  const policies = join(work, "policies");
  mkdirSync(policies);
  writeFileSync(join(policies, "policy.yaml"), JWT_POLICY);
  const settings = resolveSettings(
    {
      broker: srv.url,
      identity: "provisioner.test",
      policies,
      workers: 20,
      discovery: { interval: "2s", timeout: "1500ms", quiet: "300ms", at_start: true },
      hold_after_restart: "3s",
      rpc: { inventory_timeout: "1500ms", provision_timeout: "3s", max_timeouts: 2, backoff_max: "200ms" },
      watch: false,
      audit: { file: join(work, "audit.jsonl") },
      ...cfg(work),
    },
    { CHORIA_PROVISIONER_TOKEN: TOKEN },
  );
  let logged = "";
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logged += chunk.toString();
      cb();
    },
  });
  const daemon = await startDaemon(settings, { log: pino({ level: "debug" }, sink), flow: { backoff: { baseMs: 20, maxMs: 200 } } });
  const records: DecisionRecord[] = [];
  const waiters = new Set<() => void>();
  daemon.provisioner.on("record", (r) => {
    records.push(r);
    for (const w of [...waiters]) w();
  });
  return {
    srv,
    fleet,
    daemon,
    records,
    work,
    logText: () => logged,
    audit: () => readFileSync(join(work, "audit.jsonl"), "utf8"),
    metrics: async () => (await fetch(`${daemon.admin.url}/metrics`)).text(),
    waitRecords(pred, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = latest(records);
          if (!pred(m)) return;
          clearTimeout(t);
          waiters.delete(check);
          resolve(m);
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          const reasons = [...latest(records).values()].slice(-3).map((r) => `${r.identity} ${r.outcome}: ${r.reason}`);
          reject(new Error(`timed out waiting for ${what}; ${records.length} records, last: ${reasons.join("; ")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await daemon.stop(2000);
      await fleet.stop();
      await srv.stop();
    },
  };
}

const all = (fleet: Fleet, outcome: string) => (m: Map<string, DecisionRecord>) => fleet.identities.every((id) => m.get(id)?.outcome === outcome);

function provisioningJwt(alg: "RS256" | "EdDSA", key: Parameters<typeof makeJwt>[2], extra: Record<string, unknown> = {}): string {
  const claims = { purpose: "choria_provisioning", cht: TOKEN, chpwd: BROKER_PASSWORD, chu: "https://provision.example.net", chs: false, ou: "acme", extensions: { site: "ams" }, iat: nowS(), exp: nowS() + 3600, ...extra };
  // the server returns the file untrimmed: keep the trailing newline a real file has
  return makeJwt({ alg, typ: "JWT" }, claims, key) + "\n";
}

/** secrets that must never appear in what the daemon writes */
function assertNoSecrets(h: Harness, extra: string[] = []): void {
  const audit = h.audit();
  const log = h.logText();
  assert.ok(audit.length > 0 && log.length > 0);
  for (const s of [TOKEN, BROKER_PASSWORD, ...extra]) {
    assert.ok(!audit.includes(s), `audit log contains a secret (${s.slice(0, 12)}...)`);
    assert.ok(!log.includes(s), `daemon log contains a secret (${s.slice(0, 12)}...)`);
  }
}

test("features.jwt: RS256 provisioning JWTs are verified first and their claims reach policies and records without secrets", async () => {
  const signer = rsaPair();
  const N = 12;
  const h = await harness({ nodes: N, provisioningJwt: provisioningJwt("RS256", signer.privateKey) }, (work) => {
    const pem = join(work, "provisioning-signer.pem");
    writeFileSync(pem, signer.publicKey.export({ type: "spki", format: "pem" }));
    return { features: { jwt: true }, jwt_verify_cert: pem, ca: { dir: caDir } };
  });
  try {
    const m = await h.waitRecords(all(h.fleet, "configure"), 30_000, "every node configured");
    const report = await h.fleet.waitFor((r) => r.totals.provisioned === N, 10_000);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    assert.equal(report.totals.requests["choria_provision#jwt"], N, "one jwt call per node");
    for (const node of report.nodes) {
      const r = m.get(node.identity)!;
      assert.equal(r.jwt?.ou, "acme");
      assert.deepEqual(r.jwt?.extensions, { site: "ams" });
      assert.equal(r.jwt?.cht, undefined, "the token claim is not recorded");
      assert.equal(r.jwt?.chpwd, undefined, "the broker password claim is not recorded");
      assert.ok(r.fired.some((f) => f.name === "acme-organisation"), "the policy's jwt.ou condition matched");
      assert.equal(node.configuration?.["plugin.choria.organization"], "acme");
      assert.equal(node.configuration?.["plugin.choria.provisioning_url"], "https://provision.example.net");
      assert.ok(node.certificate, "pki still runs alongside jwt");
    }
    assertNoSecrets(h);
  } finally {
    await h.stop();
  }
});

test("features.jwt: a JWT signed by another key is refused with its reason, counted, and the node is told nothing", async () => {
  const trusted = rsaPair();
  const forger = rsaPair();
  const N = 5;
  const h = await harness({ nodes: N, provisioningJwt: provisioningJwt("RS256", forger.privateKey) }, (work) => {
    const pem = join(work, "provisioning-signer.pem");
    writeFileSync(pem, trusted.publicKey.export({ type: "spki", format: "pem" }));
    return { features: { jwt: true }, jwt_verify_cert: pem, ca: { dir: caDir } };
  });
  try {
    const m = await h.waitRecords(all(h.fleet, "refused"), 20_000, "every node refused");
    for (const r of m.values()) {
      assert.match(r.reason, /^provisioning JWT refused \(bad_signature\): RS256 signature does not verify/);
      assert.equal(r.jwt, undefined, "claims of an unverified token are not recorded");
    }
    const t = h.fleet.report().totals;
    assert.equal(t.configures, 0);
    assert.equal(t.requests["choria_provision#gencsr"] ?? 0, 0, "nothing after the refused jwt");
    assert.equal(t.requests["rpcutil#inventory"] ?? 0, 0);
    const metrics = await h.metrics();
    assert.match(metrics, new RegExp(`^choria_provisioner_jwt_refusals\\{site="default",reason="bad_signature"\\} ${N}$`, "m"));
    assertNoSecrets(h);
  } finally {
    await h.stop();
  }
});

/** per-identity RSA key and certificate the legacy helper hands out, signed by a CA of the test */
async function helperMaterial(identities: string[]): Promise<{ ca: string; nodes: Record<string, { key: string; certificate: string; serial: string }> }> {
  const ca = await makeTestCa("CN=Helper CA");
  const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
  const nodes: Record<string, { key: string; certificate: string; serial: string }> = {};
  let serial = 0x7000;
  for (const id of identities) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const s = (serial++).toString(16);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: s,
      subject: `CN=${id}`,
      issuer: ca.cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: RSA,
      publicKey: new x509.PublicKey(publicKey.export({ type: "spki", format: "der" })),
      signingKey: ca.keys.privateKey as webcrypto.CryptoKey,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: id }])],
    });
    // PKCS#8, as many CAs write it: delivered as PKCS#1 after encryption
    nodes[id] = { key: String(privateKey.export({ type: "pkcs8", format: "pem" })), certificate: cert.toString("pem"), serial: s };
  }
  return { ca: ca.pem, nodes };
}

/** a helper with the reference's stdin/stdout contract that records its input and hands out the material */
function writeHelper(work: string, material: unknown): string {
  const file = join(work, "material.json");
  writeFileSync(file, JSON.stringify(material));
  const inputs = join(work, "helper-inputs");
  mkdirSync(inputs);
  const script = join(work, "helper.mjs");
  writeFileSync(
    script,
    `#!/usr/bin/env node
import { readFileSync, writeFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
writeFileSync(${JSON.stringify(inputs)} + "/" + input.identity + ".json", JSON.stringify(input));
const m = JSON.parse(readFileSync(${JSON.stringify(file)}, "utf8"));
const n = m.nodes[input.identity];
process.stdout.write(JSON.stringify({
  msg: "configured by the test helper",
  configuration: { identity: input.identity, "plugin.choria.server.provision": "false", "plugin.choria.middleware_hosts": "nats://broker.example.net:4222", "plugin.choria.organization": input.jwt ? input.jwt.ou : "none" },
  certificate: n.certificate, ca: m.ca, key: n.key, ssldir: "/etc/choria/ssl",
}));
`,
  );
  chmodSync(script, 0o755);
  return script;
}

/** base64 lines of a PEM body: any of them in a log would leak part of the key */
const pemLines = (pem: string) => pem.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));

test("a legacy helper's private key is delivered encrypted to the node's ECDH key, decrypted there and matches the certificate", async () => {
  const signer = edPair();
  const N = 6;
  const identities = Array.from({ length: N }, (_, i) => identityOf(i));
  const material = await helperMaterial(identities);
  const h = await harness({ nodes: N, provisioningJwt: provisioningJwt("EdDSA", signer.privateKey) }, (work) => ({
    features: { jwt: true },
    // a hex ed25519 key given as the value itself
    jwt_verify_cert: signer.pubHex,
    ca: { dir: caDir },
    helper: writeHelper(work, material),
  }));
  try {
    assert.deepEqual(h.fleet.identities, identities);
    const m = await h.waitRecords(all(h.fleet, "configure"), 30_000, "every node configured");
    const report = await h.fleet.waitFor((r) => r.totals.provisioned === N, 10_000);
    // key_decrypt_failed, certificate_key_mismatch or key_without_ecdh would be violations here
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    for (const node of report.nodes) {
      assert.equal(node.certificate?.serial.toLowerCase(), material.nodes[node.identity]!.serial);
      assert.equal(node.configuration?.["plugin.choria.organization"], "acme");
      assert.equal(m.get(node.identity)!.policy?.name, "helper:helper.mjs");
      // the reference hands the helper the full claims, the token included, plus the CSR
      const input = JSON.parse(readFileSync(join(h.work, "helper-inputs", `${node.identity}.json`), "utf8"));
      assert.equal(input.jwt.cht, TOKEN);
      assert.equal(input.jwt.ou, "acme");
      assert.match(input.csr.csr, /BEGIN CERTIFICATE REQUEST/);
      assert.equal(input.ed25519_pubkey, null);
    }
    const keyLines = Object.values(material.nodes).flatMap((n) => pemLines(n.key));
    assertNoSecrets(h, keyLines);
    assert.ok(!h.audit().includes("PRIVATE KEY") && !h.logText().includes("PRIVATE KEY"));
  } finally {
    await h.stop();
  }
});

test("without features.jwt a helper-supplied key is not sent at all: the node is deferred with the reason", async () => {
  const N = 2;
  const identities = Array.from({ length: N }, (_, i) => identityOf(i));
  const material = await helperMaterial(identities);
  const h = await harness({ nodes: N }, (work) => ({ ca: { dir: caDir }, helper: writeHelper(work, material) }));
  try {
    const m = await h.waitRecords(all(h.fleet, "defer"), 20_000, "every node deferred");
    for (const r of m.values()) assert.match(r.reason, /private key.*enable features\.jwt/);
    const t = h.fleet.report().totals;
    assert.equal(t.configures, 0);
    assert.equal(t.requests["choria_provision#jwt"] ?? 0, 0);
    assertNoSecrets(h, Object.values(material.nodes).flatMap((n) => pemLines(n.key)));
  } finally {
    await h.stop();
  }
});

async function ed25519Run(protocol: 1 | 2): Promise<void> {
  const provisioningSigner = edPair();
  const serverSigner = edPair();
  const client = edPair();
  const N = 8;
  const validityDays = 30;
  const h = await harness(
    { nodes: N, protocol, provisioningJwt: provisioningJwt("EdDSA", provisioningSigner.privateKey, protocol === 2 ? { v2: true } : {}) },
    (work) => {
      const seed = join(work, "signer.seed");
      writeFileSync(seed, serverSigner.seedHex + "\n", { mode: 0o600 });
      const cfg: ConfigFile = { features: { ed25519: true }, jwt_verify_cert: provisioningSigner.pubHex, jwt_signing_key: seed, server_jwt_validity: `${validityDays}d` };
      if (protocol === 2) {
        const clientJwt = join(work, "client.jwt");
        writeFileSync(clientJwt, makeJwt({ alg: "EdDSA", typ: "JWT" }, { purpose: "choria_client_id", callerid: "choria=provisioner.test", exp: nowS() + 3600 }, client.privateKey));
        Object.assign(cfg, { protocol: 2, client_jwt: clientJwt });
      }
      return cfg;
    },
  );
  try {
    assert.equal(h.daemon.settings.pki, false, "ed25519 replaces pki");
    const m = await h.waitRecords(all(h.fleet, "configure"), 30_000, "every node configured");
    const report = await h.fleet.waitFor((r) => r.totals.provisioned === N, 10_000);
    // server_jwt_invalid (wrong identity/key, expired), no_credentials or wrong_protocol would show here
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    assert.equal(report.totals.requests["choria_provision#gencsr"] ?? 0, 0);
    assert.equal(report.totals.requests["choria_provision#gen25519"], N);
    for (const node of report.nodes) {
      const token = node.serverJwt!;
      assert.ok(token, `${node.identity} got no server JWT`);
      const [hd, cl, sig] = token.split(".");
      // what a broker does: the signature verifies with the signer's public key
      assert.ok(verify(null, Buffer.from(`${hd}.${cl}`), serverSigner.publicKey, Buffer.from(sig!, "base64url")), `${node.identity}: server JWT does not verify`);
      const claims = JSON.parse(Buffer.from(cl!, "base64url").toString());
      assert.equal(JSON.parse(Buffer.from(hd!, "base64url").toString()).alg, "EdDSA");
      assert.equal(claims.purpose, "choria_server");
      assert.equal(claims.identity, node.identity);
      assert.equal(claims.public_key, node.ed25519Public, "the token names the key the node made in gen25519");
      // the policy's acme rule (on jwt.ou) sets collectives: the server JWT follows the configuration
      assert.deepEqual(claims.collectives, ["acme"]);
      assert.equal(node.configuration?.collectives, "acme");
      // the policy's serverClaims: ou and subject templated per node, permissions merged from the
      // defaults (submission) and the acme rule (streams)
      assert.equal(claims.ou, "acme");
      assert.deepEqual(claims.pub_subjects, [`choria.node_metadata.${node.identity}`]);
      assert.deepEqual(claims.permissions, { submission: true, streams: true });
      assert.ok(Math.abs(claims.exp - (nowS() + validityDays * 86400)) < 120, `exp ${claims.exp}`);
      const r = m.get(node.identity)!;
      assert.equal(r.serverJwt?.jti, claims.jti, "the record names the token without holding it");
      assert.equal(r.jwt?.ou, "acme");
      assert.equal(node.certificate, undefined);
    }
    assertNoSecrets(h, [serverSigner.seedHex]);
    assert.ok(!h.audit().includes(report.nodes[0]!.serverJwt!), "the server JWT itself is not in the audit log");
  } finally {
    await h.stop();
  }
}

test("features.ed25519 over protocol v1: gen25519 and a server JWT that verifies with the signer's public key and carries the policy's serverClaims", () => ed25519Run(1));

test("a protocol v2 fleet is provisioned end to end (ed25519, client JWT as caller)", () => ed25519Run(2));
