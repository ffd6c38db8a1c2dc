/**
 * A CA directory that group or others can write, or that another (non-root) user owns, and a
 * CA key another user owns, are refused with the path and the problem: by the daemon at start,
 * by loading the CA and by writing its CRL, and by the `ca` commands. `ca init` makes the directory 0700 and the key 0600.
 * The tests run as root, so they can hand files to another uid with chown.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { initBuiltinCa, loadCa, openBuiltinCa, writeCrl, CertificateLedger } from "../../src/ca/index.js";
import { resolveSettings } from "../../src/config/index.js";
import { startDaemon } from "../../src/daemon/start.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { runCli } from "../helpers/cli.js";
import { REPO } from "../helpers/daemon.js";
import { makeCsr } from "./csr-fixtures.js";

const ROOT = process.geteuid?.() === 0;
const AS_ROOT = { skip: ROOT ? false : "needs root to hand files to another uid (chown)" };
const OTHER_UID = 4242;

const tmp = mkdtempSync(join(tmpdir(), "ca-trust-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const mode = (p: string): number => statSync(p).mode & 0o777;

describe("ca init", () => {
  test("makes the directory 0700 and the key 0600, parents included, whatever the umask", async () => {
    const old = process.umask(0);
    try {
      const dir = join(tmp, "new", "ca");
      const { keyPath, certPath } = await initBuiltinCa(dir);
      assert.equal(mode(dir), 0o700);
      assert.equal(mode(join(tmp, "new")), 0o700);
      assert.equal(mode(keyPath), 0o600);
      assert.equal(mode(certPath), 0o644);
    } finally {
      process.umask(old);
    }
  });

  test("refuses an existing directory others can write to, before writing anything", async () => {
    const dir = join(tmp, "open");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    await assert.rejects(initBuiltinCa(dir), (e: Error) => e.message === `CA directory ${dir} has mode 0777: group or others can write to it and so replace the CA key or certificate (run: chmod 700 ${dir})`);
    assert.deepEqual(readdirSync(dir), []);
    chmodSync(dir, 0o755);
    await initBuiltinCa(dir);
  });
});

describe("loading the CA", () => {
  test("refuses a directory group or others can write, naming it and its mode", async () => {
    const dir = join(tmp, "writable");
    await initBuiltinCa(dir);
    for (const m of [0o770, 0o720, 0o702, 0o777, 0o1777]) {
      chmodSync(dir, m);
      assert.throws(() => loadCa(dir), (e: Error) => e.message.startsWith(`CA directory ${dir} has mode 0${(m & 0o777).toString(8)}: group or others can write to it`), `mode 0${m.toString(8)}`);
    }
    chmodSync(dir, 0o750);
    assert.ok(loadCa(dir).key);
  });

  test("refuses a key file another user owns, naming it and both uids", AS_ROOT, async () => {
    const dir = join(tmp, "foreign-key");
    const { keyPath } = await initBuiltinCa(dir);
    chownSync(keyPath, OTHER_UID, OTHER_UID);
    await assert.rejects(openBuiltinCa(dir, { workers: 1 }), (e: Error) => e.message.startsWith(`CA key ${keyPath} is owned by uid ${OTHER_UID}, not by the user this runs as (uid 0)`));
    // the CRL is signed with the same key
    const ledger = CertificateLedger.open(join(dir, "ledger.sqlite"));
    try {
      assert.throws(() => writeCrl({ caDir: dir, ledger, validityMs: 60_000 }), /is owned by uid 4242/);
    } finally {
      ledger.close();
    }
    chownSync(keyPath, 0, 0);
    await (await openBuiltinCa(dir, { workers: 1 })).close();
  });

  test("refuses a directory another user owns (root's is fine)", AS_ROOT, async () => {
    const dir = join(tmp, "foreign-dir");
    await initBuiltinCa(dir);
    chownSync(dir, OTHER_UID, OTHER_UID);
    assert.throws(() => loadCa(dir), (e: Error) => e.message.startsWith(`CA directory ${dir} is owned by uid ${OTHER_UID}, not by this user (uid 0) or root`));
    chownSync(dir, 0, 0);
    assert.ok(loadCa(dir).key);
  });
});

describe("the ca commands that use the key", () => {
  test("sign, revoke and import refuse a CA directory others can write, exit 2 and name it; revoke revokes nothing", async () => {
    const dir = join(tmp, "cli-open");
    assert.equal((await runCli(["ca", "init", "--dir", dir])).code, 0);
    assert.equal(mode(dir), 0o700);
    const csr = join(tmp, "n1.csr");
    writeFileSync(csr, await makeCsr({ cn: "n1.example.net" }));
    assert.equal((await runCli(["ca", "sign", "--dir", dir, "--csr", csr, "--identity", "n1.example.net"])).code, 0);
    chmodSync(dir, 0o777);
    const problem = `CA directory ${dir} has mode 0777: group or others can write to it`;
    for (const args of [
      ["ca", "sign", "--dir", dir, "--csr", csr, "--identity", "n1.example.net"],
      ["ca", "revoke", "--dir", dir, "--identity", "n1.example.net"],
      ["ca", "import", "--dir", dir, "--cert", join(dir, "ca.pem"), "--chain", join(dir, "ca.pem")],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args[1]}: ${r.stderr}`);
      assert.ok(r.stderr.includes(problem), `${args[1]}: ${r.stderr}`);
    }
    chmodSync(dir, 0o700);
    const list = JSON.parse((await runCli(["ca", "list", "--dir", dir, "--format", "json"])).stdout) as Array<{ revokedAt?: string }>;
    assert.deepEqual(list.map((e) => e.revokedAt), [undefined], "the refused revoke revoked nothing");
  });

  test("sign and revoke refuse a CA key another user owns", AS_ROOT, async () => {
    const dir = join(tmp, "cli-foreign");
    assert.equal((await runCli(["ca", "init", "--dir", dir])).code, 0);
    const key = join(dir, "ca-key.pem");
    chownSync(key, OTHER_UID, OTHER_UID);
    const csr = join(tmp, "n2.csr");
    writeFileSync(csr, await makeCsr({ cn: "n2.example.net" }));
    for (const args of [
      ["ca", "sign", "--dir", dir, "--csr", csr, "--identity", "n2.example.net"],
      ["ca", "revoke", "--dir", dir, "--identity", "n2.example.net"],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args[1]}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`CA key ${key} is owned by uid ${OTHER_UID}, not by the user this runs as (uid 0)`), `${args[1]}: ${r.stderr}`);
    }
  });
});

describe("the daemon", () => {
  let srv: LocalNatsServer;
  before(async () => {
    srv = await startNatsServer();
  });
  after(async () => {
    await srv.stop();
  });

  const start = (caDir: string) =>
    startDaemon(resolveSettings({ broker: srv.url, identity: "provisioner.trust", policies: join(REPO, "policies"), watch: false, ca: { dir: caDir } }, {}), { log: pino({ level: "silent" }) });

  test("does not start with a CA directory others can write to", async () => {
    const dir = join(tmp, "daemon-open");
    await initBuiltinCa(dir);
    chmodSync(dir, 0o777);
    await assert.rejects(start(dir), (e: Error) => e.message.includes(`CA directory ${dir} has mode 0777`));
  });

  test("does not start with a CA key another user owns", AS_ROOT, async () => {
    const dir = join(tmp, "daemon-foreign");
    const { keyPath } = await initBuiltinCa(dir);
    chownSync(keyPath, OTHER_UID, OTHER_UID);
    await assert.rejects(start(dir), (e: Error) => e.message.includes(`CA key ${keyPath} is owned by uid ${OTHER_UID}`));
    chownSync(keyPath, 0, 0);
    const d = await start(dir);
    await d.stop(1000);
  });
});
