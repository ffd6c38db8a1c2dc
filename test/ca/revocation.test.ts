/**
 * Revocation and the CRL: by the CLI (ca sign, ca list, ca revoke) with the CRL checked by
 * OpenSSL, and in the daemon (the token-guarded admin API, /ca/crl, ca.revoke_on_shutdown with a
 * decommissioned simulated node).
 */
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateLedger } from "../../src/ca/index.js";
import { generateFacts, startFleet } from "../../src/sim/index.js";
import { startNatsServer } from "../../src/transport/local-server.js";
import { runCli } from "../helpers/cli.js";
import { startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { makeCsr } from "./csr-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "revocation-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = runCli;

/** `openssl crl -verify`: the signature against the CA, and the text OpenSSL reads */
function opensslCrl(crlFile: string, caFile: string): { verify: string; text: string } {
  const r = execFileSync("openssl", ["crl", "-in", crlFile, "-CAfile", caFile, "-verify", "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  // OpenSSL 3 prints "verify OK" on stderr; read both
  const both = execFileSync("sh", ["-c", `openssl crl -in "${crlFile}" -CAfile "${caFile}" -verify -noout 2>&1`], { encoding: "utf8" });
  return { verify: both, text: r };
}

describe("ca revoke and the CRL (CLI)", () => {
  test("signed certificates are listed; a revocation lands in a CRL that openssl verifies against the CA, with reason and nextUpdate", async () => {
    const dir = join(tmp, "ca");
    assert.equal((await cli(["ca", "init", "--dir", dir])).code, 0);
    const serials: string[] = [];
    for (const id of ["a.example.net", "b.example.net"]) {
      const csr = join(tmp, `${id}.csr`);
      writeFileSync(csr, await makeCsr({ cn: id }));
      const r = await cli(["ca", "sign", "--dir", dir, "--csr", csr, "--identity", id, "--days", "20"]);
      assert.equal(r.code, 0, r.stderr);
      serials.push(/serial ([0-9a-f]+)/.exec(r.stderr)![1]!);
    }
    const list = await cli(["ca", "list", "--dir", dir, "--format", "json"]);
    const rows = JSON.parse(list.stdout) as Array<{ serial: string; identity: string; signer: string; notAfter: string }>;
    assert.deepEqual(rows.map((r) => [r.serial, r.identity, r.signer]), [[serials[0], "a.example.net", "cli"], [serials[1], "b.example.net", "cli"]]);
    assert.equal(JSON.parse((await cli(["ca", "list", "--dir", dir, "--expiring", "30d", "--format", "json"])).stdout).length, 2);
    assert.equal(JSON.parse((await cli(["ca", "list", "--dir", dir, "--expiring", "7d", "--format", "json"])).stdout).length, 0);

    const rev = await cli(["ca", "revoke", "--dir", dir, "--serial", serials[0]!, "--reason", "keyCompromise"]);
    assert.equal(rev.code, 0, rev.stderr);
    assert.match(rev.stdout, new RegExp(`revoked ${serials[0]} a\\.example\\.net \\(keyCompromise\\)`));
    const o = opensslCrl(join(dir, "crl.pem"), join(dir, "ca.pem"));
    assert.match(o.verify, /verify OK/);
    assert.match(o.text, new RegExp(`Serial Number: ${serials[0]!.toUpperCase()}`));
    assert.match(o.text, /Key Compromise/);
    assert.match(o.text, /Next Update: /);
    assert.doesNotMatch(o.text, new RegExp(serials[1]!.toUpperCase()));

    // a second revocation of the same one is a clear error; an empty selector too
    assert.equal((await cli(["ca", "revoke", "--dir", dir, "--serial", serials[0]!])).code, 1);
    const none = await cli(["ca", "revoke", "--dir", dir]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /exactly one of --serial or --identity/);
  });

  test("a CRL signed by a key other than the CA's does not verify (the check can fail)", async () => {
    const a = join(tmp, "ca-a");
    const b = join(tmp, "ca-b");
    await cli(["ca", "init", "--dir", a]);
    await cli(["ca", "init", "--dir", b]);
    const csr = join(tmp, "c.csr");
    writeFileSync(csr, await makeCsr({ cn: "c.example.net" }));
    await cli(["ca", "sign", "--dir", a, "--csr", csr, "--identity", "c.example.net"]);
    assert.equal((await cli(["ca", "revoke", "--dir", a, "--identity", "c.example.net"])).code, 0);
    // openssl crl exits 0 either way (OpenSSL 3); what it prints is the verdict
    let verdict = "";
    try {
      verdict = opensslCrl(join(a, "crl.pem"), join(b, "ca.pem")).verify;
    } catch (e) {
      verdict = String((e as { stderr?: string }).stderr ?? e);
    }
    assert.doesNotMatch(verdict, /verify OK/);
    assert.match(verdict, /verify fail|unable to get issuer|signature failure/i);
  });
});

describe("revocation in the daemon", () => {
  test("admin API (token-guarded), /ca/crl, and revoke_on_shutdown for a decommissioned node", async () => {
    const srv = await startNatsServer({});
    const caDir = await makeCa();
    const d = await startTestDaemon(srv.url, { ca: { dir: caDir, revoke_on_shutdown: true, crl_validity: "1d" }, admin: { listen: "127.0.0.1:0" } }, {}, { CHORIA_PROVISIONER_ADMIN_TOKEN: "adm1n" });
    const fleet = await startFleet({ servers: srv.url, nodes: 3, seed: 5, restartDelayMs: 50, upgradable: false, facts: (id, i) => (i === 0 ? { ...generateFacts(5, id), role: "decommissioned" } : generateFacts(5, id)) });
    try {
      const retired = fleet.report().nodes[0]!.identity;
      // the retired node had a certificate from an earlier life: the ledger knows it
      const earlier = CertificateLedger.open(join(caDir, "ledger.sqlite"));
      earlier.recordNow({ serial: "7e57", identity: retired, sans: [retired], notBefore: Date.now() - 1000, notAfter: Date.now() + 86_400_000, fingerprint: "0".repeat(64), policyVersion: "fleet@old", issuedAt: Date.now() - 1000, signer: "builtin" });
      earlier.close();

      await d.waitFor((rs) => rs.some((r) => r.identity === retired && r.outcome === "shutdown") && rs.filter((r) => r.outcome === "configure").length >= 2, 30_000, "a shutdown and two configures");
      const crlText = async () => (await fetch(`${d.admin.url}/ca/crl`)).text();
      const crlFile = join(tmp, "daemon-crl.pem");
      // revocation is synchronous with the record event; the CRL is made on the spot
      writeFileSync(crlFile, await crlText());
      const o = opensslCrl(crlFile, join(caDir, "ca.pem"));
      assert.match(o.verify, /verify OK/);
      assert.match(o.text, /Serial Number: 7E57/);
      assert.match(o.text, /Cessation Of Operation/);

      // the admin API: no token, a wrong token, then a good one
      const configured = d.records.find((r) => r.outcome === "configure")!;
      const post = (body: unknown, token?: string) =>
        fetch(`${d.admin.url}/ca/revoke`, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
      assert.equal((await post({ serial: configured.certificate!.serial })).status, 401);
      assert.equal((await post({ serial: configured.certificate!.serial }, "wrong")).status, 401);
      const bad = await post({ serial: "1", identity: "x" }, "adm1n");
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /exactly one of/);
      assert.equal((await post({ serial: "1", reason: "because" }, "adm1n")).status, 400);
      const ok = await post({ serial: configured.certificate!.serial, reason: "superseded" }, "adm1n");
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { revoked: [configured.certificate!.serial] });
      writeFileSync(crlFile, await crlText());
      const after = opensslCrl(crlFile, join(caDir, "ca.pem"));
      assert.match(after.text, new RegExp(`Serial Number: ${configured.certificate!.serial.toUpperCase()}`));
      assert.match(after.text, /Superseded/);
    } finally {
      await d.stop(2000);
      await fleet.stop();
      await srv.stop();
    }
  });
});
