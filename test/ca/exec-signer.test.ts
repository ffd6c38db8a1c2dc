import "reflect-metadata";
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import * as x509 from "@peculiar/x509";
import { createExecSigner, initBuiltinCa, CaRejectedError, CaUnavailableError } from "../../src/ca/index.js";
import { makeCsr } from "./csr-fixtures.js";

const ID = "node1.example.net";
const tmp = mkdtempSync(join(tmpdir(), "exec-signer-"));
let caDir: string;
let caPem: string;
let csr: string;

function script(name: string, body: string): string {
  const p = join(tmp, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

// A signer script an operator might write: openssl x509 -req with SANs from the environment.
const OPENSSL_SIGNER = `set -eu
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/csr.pem"
sans=$(printf '%s\\n' "$CHORIA_SANS" | tr ',' '\\n' | while read -r n; do
  case "$n" in *[!0-9.]*) printf 'DNS:%s,' "$n" ;; *) printf 'IP:%s,' "$n" ;; esac; done)
printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' "\${sans%,}" > "$work/ext"
openssl x509 -req -in "$work/csr.pem" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca-key.pem" -days "$CHORIA_VALIDITY_DAYS" -extfile "$work/ext" -subj "/CN=$CHORIA_IDENTITY" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
cat "$CA_DIR/ca.pem"`;

before(async () => {
  caDir = join(tmp, "ca");
  const { certPath } = await initBuiltinCa(caDir, { key: "ecdsa", commonName: "exec test CA" });
  caPem = readFileSync(certPath, "utf8");
  process.env.CA_DIR = caDir;
  csr = await makeCsr({ cn: ID });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("exec signer", () => {
  test("openssl-based script: CSR on stdin, leaf then chain on stdout", async () => {
    const signer = createExecSigner({ command: script("openssl-sign.sh", OPENSSL_SIGNER), timeoutMs: 10_000 });
    assert.equal(signer.kind, "exec");
    const r = await signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 3, sans: ["10.1.1.1", "alt.example.net"] } });
    const cert = new x509.X509Certificate(r.certificatePem);
    assert.equal(cert.subject, `CN=${ID}`);
    assert.ok(await cert.verify({ publicKey: new x509.X509Certificate(caPem).publicKey, signatureOnly: true }));
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON().map((n) => `${n.type}:${n.value}`);
    assert.deepEqual(names, [`dns:${ID}`, "ip:10.1.1.1", "dns:alt.example.net"]);
    assert.equal(r.caPem.trim(), caPem.trim(), "chain taken from stdout");
    assert.equal(r.serial, cert.serialNumber.toLowerCase());
    assert.ok(Math.abs(new Date(r.notAfter).getTime() - Date.now() - 3 * 86_400_000) < 120_000);
  });

  test("configured chain (caFile) wins over stdout", async () => {
    const other = join(tmp, "other-chain.pem");
    writeFileSync(other, "-----BEGIN CERTIFICATE-----\nb3RoZXI=\n-----END CERTIFICATE-----\n");
    const signer = createExecSigner({ command: script("openssl-sign2.sh", OPENSSL_SIGNER), caFile: other });
    const r = await signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } });
    assert.match(r.caPem, /b3RoZXI=/);
  });

  test("non-zero exit → CaUnavailableError with stderr, private keys redacted", async () => {
    const cmd = script("fail.sh", `cat >/dev/null; echo "cannot reach HSM" >&2; printf -- '-----BEGIN PRIVATE KEY-----\\nSECRETSECRET\\n-----END PRIVATE KEY-----\\n' >&2; exit 3`);
    const signer = createExecSigner({ command: cmd });
    await assert.rejects(signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }), (e: unknown) => {
      assert.ok(e instanceof CaUnavailableError);
      assert.match(e.message, /exit code 3/);
      assert.match(e.message, /cannot reach HSM/);
      assert.doesNotMatch(e.message, /SECRETSECRET/);
      return true;
    });
  });

  test("timeout → CaUnavailableError and the whole process group is killed", async () => {
    const pidFile = join(tmp, "grandchild.pid");
    const cmd = script("hang.sh", `sleep 60 & echo $! > "${pidFile}"; wait`);
    const signer = createExecSigner({ command: cmd, timeoutMs: 300 });
    const t0 = Date.now();
    await assert.rejects(signer.sign({ identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CaUnavailableError && /timed out after 300 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, "utf8"));
    // SIGKILL delivery is asynchronous; poll for the grandchild's death, bounded
    // a killed process may linger as a zombie until its new parent reaps it; that counts as dead
    const running = (): boolean => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
      } catch {
        return false;
      }
    };
    let alive = running();
    for (let i = 0; i < 100 && alive; i++) {
      await delay(20);
      alive = running();
    }
    assert.equal(alive, false, "grandchild sleep was killed with its group");
  });

  test("missing command, empty output, foreign certificate, private key on stdout", async () => {
    const req = { identity: ID, csrPem: csr, profile: { validityDays: 1, sans: [] } };
    await assert.rejects(createExecSigner({ command: join(tmp, "does-not-exist") }).sign(req), (e: unknown) => e instanceof CaUnavailableError && /could not be started/.test(e.message));
    await assert.rejects(createExecSigner({ command: script("empty.sh", "cat >/dev/null; echo ok") }).sign(req), (e: unknown) => e instanceof CaUnavailableError && /no certificate/.test(e.message));
    // a certificate for some other key (the CA's own) must not be handed to the node
    await assert.rejects(createExecSigner({ command: script("foreign.sh", `cat >/dev/null; cat "$CA_DIR/ca.pem"`), caPem }).sign(req), (e: unknown) => e instanceof CaRejectedError && /different public key/.test(e.message));
    await assert.rejects(createExecSigner({ command: script("leaky.sh", `cat >/dev/null; cat "$CA_DIR/ca-key.pem"`), caPem }).sign(req), (e: unknown) => e instanceof CaRejectedError && !/BEGIN/.test(e.message));
  });
});
