#!/usr/bin/env node
// Runs every test/**/*.test.ts through node:test with tsx. Node 20's --test does not
// glob .ts files itself, so we list them; extra args filter by substring of the path.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { buildRealChoria } from "./build-real-choria.mjs";

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk("test").filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
// The real-Choria suite (test/real/) runs real go-choria processes built from interop/choria.
// Without Go it is skipped, by name and with the reason; CI sets CHORIA_REAL_REQUIRED=1 so that
// it can never be skipped there silently.
const env = { ...process.env };
if (files.some((f) => f.startsWith(join("test", "real")))) {
  const real = buildRealChoria();
  if (real.ok) {
    env.CHORIA_REAL_BIN = real.choria;
    console.error(`real-Choria suite: go-choria ${real.versions.goChoria} (${real.versions.go}) at ${real.choria}${real.cached ? " (cached)" : `, built in ${real.buildSeconds.toFixed(0)} s`}`);
  } else if (process.env.CHORIA_REAL_REQUIRED === "1") {
    console.error(`real-Choria suite REQUIRED but cannot run: ${real.reason}`);
    process.exit(1);
  } else {
    env.CHORIA_REAL_SKIP = real.reason;
    console.error(`\n*** real-Choria suite (test/real/) NOT RUN: ${real.reason} ***\n`);
  }
}
// Every temporary file of the run (CAs, configs, audit logs, the brokers' and servers' own) goes
// under one directory that is removed at the end: a run used to leave about a thousand behind.
// TMPDIR is what os.tmpdir(), Go's os.TempDir and mktemp read.
const scratch = mkdtempSync(join(tmpdir(), "cp-test-"));
env.TMPDIR = scratch;
// a test that never settles fails by name after 3 minutes instead of holding CI for its 90 (the
// slowest test takes about 40 s on 2 busy cores)
function runFiles(list) {
  const stalls = join(scratch, `stalls-${Date.now()}.json`);
  const reporters = ["--test-reporter=spec", "--test-reporter-destination=stdout", `--test-reporter=${fileURLToPath(new URL("./stall-reporter.mjs", import.meta.url))}`, `--test-reporter-destination=${stalls}`];
  const res = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=180000", ...reporters, ...list], { stdio: "inherit", env });
  let report = { stalled: [], otherFailures: 0 };
  try {
    report = JSON.parse(readFileSync(stalls, "utf8"));
  } catch {
    // no report (the runner itself failed): the exit status says so
  }
  return { status: res.status ?? 1, ...report };
}
let run = runFiles(files);
// A file whose process timed out before reporting any test stalled while loading: twice a run
// stalled with no file named, and once test/credentials/key-transport.test.ts (its tests are
// synchronous; alone it passed at once, every time). Such a file is run once more, and the run
// says so. A test that failed, or hung after others of its file ran, is never run again.
if (run.status !== 0 && run.otherFailures === 0 && run.stalled.length > 0) {
  const stalled = run.stalled.map((f) => relative(process.cwd(), f));
  console.error(`\n*** ${stalled.join(", ")}: stalled before its first test and timed out; running ${stalled.length === 1 ? "it" : "them"} once more ***\n`);
  run = runFiles(run.stalled);
}
rmSync(scratch, { recursive: true, force: true });
if (env.CHORIA_REAL_SKIP) console.error(`\n*** real-Choria suite (test/real/) was NOT RUN: ${env.CHORIA_REAL_SKIP} ***`);
process.exit(run.status);
