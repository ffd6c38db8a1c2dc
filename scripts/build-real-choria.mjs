#!/usr/bin/env node
// Builds the real go-choria server/broker binary (interop/choria, our own Go module that
// requires go-choria) and caches it outside the repository, keyed by the Go version and the
// module's files (go.mod pins go-choria, go.sum pins everything else). A cold build takes
// minutes; a warm one only hashes files. Prints the result as JSON on stdout:
//   {"ok":true,"choria":"/root/.cache/choria-provisioner/real-choria/<key>/choria","cached":true,...}
//   {"ok":false,"reason":"go not found: the real-Choria suite needs Go >= 1.25"}
// Usage: build-real-choria.mjs [--quiet]
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODULE = join(REPO, "interop", "choria");
const MIN_GO = [1, 25];

function goVersion() {
  const r = spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.trim();
}

/** "go1.26.8" -> [1, 26] */
function goMinor(v) {
  const m = /^go(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** the go-choria version our module requires: the one place it is pinned */
export function pinnedVersions() {
  const mod = readFileSync(join(MODULE, "go.mod"), "utf8");
  const v = /github\.com\/choria-io\/go-choria (v\S+)/.exec(mod);
  return { goChoria: v ? v[1] : "unknown" };
}

function cacheRoot() {
  return process.env.CHORIA_PROVISIONER_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "choria-provisioner");
}

export function buildRealChoria({ log = (s) => process.stderr.write(s + "\n") } = {}) {
  const gv = goVersion();
  if (!gv) return { ok: false, reason: "go not found on PATH: the real-Choria suite needs Go >= 1.25 (https://go.dev/dl/)" };
  const minor = goMinor(gv);
  if (!minor || minor[0] < MIN_GO[0] || (minor[0] === MIN_GO[0] && minor[1] < MIN_GO[1])) {
    return { ok: false, reason: `${gv} is too old: go-choria ${pinnedVersions().goChoria} needs Go >= ${MIN_GO.join(".")}` };
  }
  const h = createHash("sha256").update(gv);
  for (const f of readdirSync(MODULE).filter((f) => /\.(go|mod|sum)$/.test(f)).sort()) h.update(f).update(readFileSync(join(MODULE, f)));
  const key = h.digest("hex").slice(0, 16);
  const dir = join(cacheRoot(), "real-choria", key);
  const bin = join(dir, "choria");
  const versions = { go: gv, ...pinnedVersions() };
  if (existsSync(bin)) return { ok: true, cached: true, choria: bin, versions };

  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  log(`building the real go-choria ${versions.goChoria} with ${gv} into ${dir} (a cold build takes a few minutes)`);
  const started = Date.now();
  const env = { ...process.env, GOWORK: "off", GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-mod=readonly" };
  const ldflags = [
    "-s -w",
    `-X github.com/choria-io/go-choria/build.Version=${versions.goChoria.replace(/^v/, "")}`,
    // the build default; each test server passes its own with --provisioning-jwt
    "-X github.com/choria-io/go-choria/build.ProvisionJWTFile=/etc/choria/provisioning.jwt",
  ].join(" ");
  const r = spawnSync("go", ["build", "-trimpath", "-o", tmp, "-ldflags", ldflags, "."], { cwd: MODULE, env, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) return { ok: false, reason: `go build of interop/choria failed (exit ${r.status})` };
  renameSync(tmp, bin); // atomic: a concurrent run sees either no binary or a whole one
  return { ok: true, cached: false, choria: bin, versions, buildSeconds: (Date.now() - started) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const res = buildRealChoria({ log: process.argv.includes("--quiet") ? () => {} : undefined });
  process.stdout.write(JSON.stringify(res) + "\n");
  process.exit(res.ok ? 0 : 1);
}
