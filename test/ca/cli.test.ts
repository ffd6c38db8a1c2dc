import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { makeCsr } from "./csr-fixtures.js";
import { runCli } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "ca-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = runCli;

describe("choria-provisioner ca", () => {
  const dir = join(tmp, "ca");
  const csrFile = join(tmp, "node.csr");

  test("init, sign (worker thread), inspect", async () => {
    const init = await cli(["ca", "init", "--dir", dir, "--key", "rsa", "--cn", "CLI CA"]);
    assert.equal(init.code, 0, init.stderr);
    const again = await cli(["ca", "init", "--dir", dir]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^choria-provisioner: a CA already exists in \S+ \(\S+ca-key\.pem\); ca init --force replaces it/);
    assert.equal(statSync(join(dir, "ca-key.pem")).mode & 0o777, 0o600);

    writeFileSync(csrFile, await makeCsr({ cn: "node7.example.net" }));
    const sign = await cli(["ca", "sign", "--dir", dir, "--csr", csrFile, "--identity", "node7.example.net", "--san", "10.9.8.7", "--days", "9", "--chain"]);
    assert.equal(sign.code, 0, sign.stderr);
    const [leafPem, caPem] = sign.stdout.split(/(?<=-----END CERTIFICATE-----\n)/);
    const leaf = new X509Certificate(leafPem!);
    const ca = new X509Certificate(caPem!);
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.subject, "CN=node7.example.net");
    assert.equal(leaf.subjectAltName, "DNS:node7.example.net, IP Address:10.9.8.7");
    assert.match(sign.stderr, /serial [0-9a-f]{32} sha256 [0-9a-f]{64}/);

    const inspect = await cli(["ca", "inspect", "--csr", csrFile]);
    assert.equal(inspect.code, 0);
    assert.deepEqual(JSON.parse(inspect.stdout), { cn: "node7.example.net", sans: [], keyType: "rsa", keyBits: 2048 });
  });

  test("refusals exit 1 with the code; an exposed key exits 2 naming the file", async () => {
    const wrong = await cli(["ca", "sign", "--dir", dir, "--csr", csrFile, "--identity", "other.example.net"]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /CSR refused \(cn_mismatch\)/);
    const garbage = join(tmp, "garbage.csr");
    writeFileSync(garbage, "this is not a CSR\n");
    const g = await cli(["ca", "sign", "--dir", dir, "--csr", garbage, "--identity", "node7.example.net"]);
    assert.equal(g.code, 1);
    assert.match(g.stderr, /not_pem/);
    chmodSync(join(dir, "ca-key.pem"), 0o644);
    const exposed = await cli(["ca", "sign", "--dir", dir, "--csr", csrFile, "--identity", "node7.example.net"]);
    assert.equal(exposed.code, 2);
    assert.ok(exposed.stderr.includes(join(dir, "ca-key.pem")) && exposed.stderr.includes("0644"), exposed.stderr);
  });
});
