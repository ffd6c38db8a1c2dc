/**
 * go-choria's own files (the official wire schemas, the agent DDLs) for tests that check our
 * codecs against them. They are read from the go-choria module the Go toolchain downloaded for
 * interop/choria, at the version go.mod pins there, and never copied into this repository.
 * Without Go the tests that need them skip, naming the reason; CI sets CHORIA_REAL_REQUIRED=1,
 * and then a missing module is an error rather than a skip.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MODULE = fileURLToPath(new URL("../../interop/choria/", import.meta.url));

type Lookup = { dir: string; version: string } | { skip: string };
let cached: Lookup | undefined;

function lookup(): Lookup {
  // interop/choria/go.mod is the one place the go-choria version is pinned
  const version = /github\.com\/choria-io\/go-choria (v\S+)/.exec(readFileSync(join(MODULE, "go.mod"), "utf8"))?.[1];
  if (!version) return { skip: "interop/choria/go.mod does not require github.com/choria-io/go-choria" };
  const env = { ...process.env, GOWORK: "off", GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" };
  const r = spawnSync("go", ["mod", "download", "-json", `github.com/choria-io/go-choria@${version}`], { cwd: MODULE, env, encoding: "utf8", timeout: 300_000 });
  if (r.error) return { skip: `go-choria ${version}'s schemas and DDLs need Go on PATH (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
  let out: { Dir?: string; Error?: string } = {};
  try {
    out = JSON.parse(r.stdout) as typeof out;
  } catch {
    /* go printed no JSON: its stderr says why */
  }
  if (r.status !== 0 || !out.Dir) return { skip: `go mod download of go-choria ${version} failed: ${out.Error ?? r.stderr.trim().slice(0, 300)}` };
  return { dir: out.Dir, version };
}

/** the go-choria module directory, or why it is unavailable; looked up once per test process */
export function goChoriaModule(): Lookup {
  cached ??= lookup();
  if ("skip" in cached && process.env.CHORIA_REAL_REQUIRED === "1") throw new Error(`CHORIA_REAL_REQUIRED=1 but ${cached.skip}`);
  return cached;
}

/** why tests needing go-choria's files cannot run here, or undefined when they can */
export const GO_CHORIA_SKIP: string | undefined = (() => {
  const m = goChoriaModule();
  return "skip" in m ? m.skip : undefined;
})();

/** a JSON file of the go-choria module, by its path inside the module */
export function goChoriaJson<T = any>(...parts: string[]): T {
  const m = goChoriaModule();
  if ("skip" in m) throw new Error(m.skip);
  return JSON.parse(readFileSync(join(m.dir, ...parts), "utf8")) as T;
}

/** the official wire schema of one protocol layer (internal/fs/schemas/choria/protocol) */
export function wireSchemaJson(version: "v1" | "v2", kind: string): Record<string, unknown> {
  return goChoriaJson("internal", "fs", "schemas", "choria", "protocol", version, `${kind}.json`);
}

/** an agent DDL as go-choria embeds it (internal/fs/ddl/cache/agent) */
export function agentDdl(agent: string): Record<string, any> {
  return goChoriaJson("internal", "fs", "ddl", "cache", "agent", `${agent}.json`);
}
