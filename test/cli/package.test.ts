/**
 * The product as an operator installs it: `npm pack` (which builds dist/ through prepack), the
 * tarball installed globally into an empty prefix, and the installed command run with no
 * TypeScript loader: policy check, policy test on the shipped policies, ca init + sign (the
 * compiled CA worker) and `run` provisioning a few simulated nodes on a real nats-server.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { makeCsr } from "../ca/csr-fixtures.js";
import { REPO } from "../helpers/daemon.js";

const INSTALL_MS = 170_000;

/** where docs/operations.md and the systemd unit install the package */
const OPS_PREFIX = "/opt/choria-provisioner";

const tmp = mkdtempSync(join(tmpdir(), "cp-package-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  // NODE_OPTIONS could carry the test runner's tsx into npm's own lifecycle scripts
  return spawnSync("npm", [...args, "--no-audit", "--no-fund"], { cwd, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" }, timeout: INSTALL_MS });
}

/** npm as a child process the event loop keeps running beside (the mirror below answers it) */
function npmAsync(args: string[], cwd: string, env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn("npm", [...args, "--no-audit", "--no-fund"], { cwd, env: { ...process.env, NODE_OPTIONS: "", ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    c.stderr.on("data", (b) => (stderr += b));
    const t = setTimeout(() => c.kill("SIGKILL"), INSTALL_MS);
    c.once("exit", (status) => {
      clearTimeout(t);
      resolve({ status, stderr });
    });
  });
}

/**
 * better-sqlite3 (the CA ledger's driver) is native. Where its prebuilt binary cannot be
 * downloaded, as on this project's machines, installing the tarball compiles SQLite from source:
 * minutes. The test serves the binary `npm ci` already built from a loopback mirror, as an
 * operator's mirror would (npm_config_better_sqlite3_binary_host, see docs/operations.md).
 */
async function prebuiltMirror(): Promise<{ env: Record<string, string>; close: () => void }> {
  const dir = join(REPO, "node_modules", "better-sqlite3");
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const tarball = join(tmp, name);
  const tar = spawnSync("tar", ["-czf", tarball, "-C", dir, "build/Release/better_sqlite3.node"]);
  assert.equal(tar.status, 0, String(tar.stderr));
  const server = createServer((req, res) => {
    if (req.url !== `/v${version}/${name}`) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/gzip" });
    createReadStream(tarball).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { env: { npm_config_better_sqlite3_binary_host: `http://127.0.0.1:${port}` }, close: () => server.close() };
}

test("npm pack gives a lean tarball that installs into an empty prefix and runs without tsx", { timeout: INSTALL_MS }, async () => {
  const packed = npm(["pack", "--json", "--pack-destination", tmp], REPO);
  assert.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  const paths = info!.files.map((f) => f.path);
  const tops = new Set(paths.map((p) => p.split("/")[0]));
  for (const dev of ["test", "bench", ".ci", "interop", "src", "scripts", "node_modules"]) assert.ok(!tops.has(dev), `${dev}/ is not in the tarball`);
  for (const need of ["LICENSE", "README.md", "bin/choria-provisioner.js", "dist/cli/main.js", "dist/ca/sign-worker.js", "schemas/policy.schema.json", "contrib/systemd/choria-provisioner.service"]) {
    assert.ok(paths.includes(need), `${need} is in the tarball`);
  }
  assert.ok(!paths.some((p) => p.endsWith(".ts") || p.endsWith(".map")), "no TypeScript sources or source maps");

  const prefix = join(tmp, "prefix");
  // --prefer-offline: the dependencies come from npm's cache, which `npm ci` has filled
  const mirror = await prebuiltMirror();
  const installed = await npmAsync(["install", "-g", "--allow-scripts=better-sqlite3", "--prefer-offline", "--prefix", prefix, join(tmp, info!.filename)], tmp, mirror.env).finally(mirror.close);
  assert.equal(installed.status, 0, installed.stderr);
  const pkg = join(prefix, "lib/node_modules/choria-provisioner");
  for (const dev of ["tsx", "typescript", "@peculiar/x509", "reflect-metadata", "esbuild"]) assert.ok(!existsSync(join(pkg, "node_modules", dev)), `${dev} is not installed with the package`);
  assert.match(readFileSync(join(pkg, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS/);

  const bin = join(prefix, "bin/choria-provisioner");
  const work = join(tmp, "work");
  mkdirSync(work);
  const env = { ...process.env, NODE_OPTIONS: "" };
  const cli = (...args: string[]) => spawnSync(bin, args, { cwd: work, encoding: "utf8", env, timeout: 60_000 });

  const check = cli("policy", "check", "--policies", join(pkg, "policies"), "--rules", join(pkg, "rules"));
  assert.equal(check.status, 0, check.stderr);
  const tested = cli("policy", "test", join(pkg, "policies"));
  assert.equal(tested.status, 0, tested.stdout + tested.stderr);
  assert.match(tested.stdout, /^\d+ passed, 0 failed$/m);

  const caDir = join(work, "ca");
  assert.equal(cli("ca", "init", "--dir", caDir).status, 0);
  writeFileSync(join(work, "node.csr"), await makeCsr({ cn: "pkg1.example.net" }));
  const signed = cli("ca", "sign", "--dir", caDir, "--csr", join(work, "node.csr"), "--identity", "pkg1.example.net");
  assert.equal(signed.status, 0, signed.stderr);
  assert.match(signed.stdout, /^-----BEGIN CERTIFICATE-----/);
  // the native ledger driver was installed with the package (its install script allowed) and works
  const listed = cli("ca", "list", "--dir", caDir, "--format", "json");
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /pkg1\.example\.net/);

  // the systemd unit and the install docs name paths this install has
  const unit = readFileSync(join(pkg, "contrib/systemd/choria-provisioner.service"), "utf8");
  const inPrefix = (p: string) => (assert.ok(p.startsWith(`${OPS_PREFIX}/`), `${p} is under ${OPS_PREFIX}`), join(prefix, p.slice(OPS_PREFIX.length)));
  const exec = /^ExecStart=(\S+)/m.exec(unit)?.[1];
  assert.ok(exec && existsSync(inPrefix(exec)), `ExecStart ${exec} exists`);
  const docs = [...unit.matchAll(/^Documentation=(.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  assert.ok(docs.length > 0);
  for (const d of docs) assert.ok(d.startsWith("file://") && existsSync(inPrefix(d.slice("file://".length))), `Documentation ${d} exists`);
  const ops = readFileSync(join(REPO, "docs/operations.md"), "utf8");
  assert.ok(ops.includes(`npm install -g --allow-scripts=better-sqlite3 --prefix ${OPS_PREFIX} `), "operations.md installs into the unit's prefix");
  const schemaRefs = [...readFileSync(join(REPO, "docs/policy-language.md"), "utf8").matchAll(/\$schema=(\/\S+)/g)].map((m) => m[1]!);
  assert.ok(schemaRefs.length > 0, "policy-language.md shows a modeline for an installed package");
  for (const s of schemaRefs) assert.ok(existsSync(inPrefix(s)), `${s} exists in the installed package`);

  const srv = await startNatsServer();
  const TOKEN = "pkg-t0ken";
  writeFileSync(
    join(work, "provisioner.yaml"),
    [`broker: ${srv.url}`, `policies: ${join(pkg, "policies")}`, `rules: ${join(pkg, "rules")}`, "ca:", "  dir: ./ca", "discovery:", "  interval: 1s", ""].join("\n"),
  );
  const child = spawn(bin, ["run", "--config", join(work, "provisioner.yaml")], { cwd: work, env: { ...env, CHORIA_PROVISIONER_TOKEN: TOKEN }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (b) => (log += b));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const fleet = await startFleet({ servers: srv.url, nodes: 10, seed: 3, token: TOKEN, restartDelayMs: 50 });
  try {
    const admin = await new Promise<string>((resolve, reject) => {
      const look = () => {
        const m = /admin (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (m) resolve(m[1]!);
      };
      child.stderr.on("data", look);
      void exited.then((code) => reject(new Error(`run exited ${code} before serving:\n${log}`)));
    });
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    // most of the simulated fleet is configured (a few are deferred or shut down by policy): the
    // installed daemon signed their certificates with its compiled CA worker
    await fleet.waitFor((r) => r.totals.provisioned >= 5, 60_000);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, log);
    assert.match(log, /provisioner stopped/);
  } finally {
    child.kill("SIGKILL");
    await fleet.stop();
    await srv.stop();
  }
});

test("dependencies are exactly the packages src/ imports; everything else is a dev dependency", () => {
  const pkgJson = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));
  const imported = new Set<string>();
  // the worker threads' *-boot.mjs only run under tsx (dist/ has the compiled workers): their tsx is a dev tool
  for (const f of files(join(REPO, "src")).filter((f) => !f.endsWith("-boot.mjs"))) {
    const text = readFileSync(f, "utf8");
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"'.][^"']*)["']|^\s*import\s*["']([^"'.][^"']*)["']|\b(?:import|require)\(\s*["']([^"'.][^"']*)["']\s*\)/gm)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith("node:")) continue;
      imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  }
  assert.deepEqual([...imported].sort(), Object.keys(pkgJson.dependencies).sort());
});
