#!/usr/bin/env node
// Runs every test/**/*.test.ts through node:test with tsx. Node 20's --test does not
// glob .ts files itself, so we list them; extra args filter by substring of the path.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { buildRealChoria } from "./build-real-choria.mjs";
import { describeStall, watchTestFiles } from "./stall-watch.mjs";

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
// slowest test takes about 40 s on 2 busy cores); CHORIA_TEST_TIMEOUT_S changes it. A file's
// process still running at two thirds of that is looked into (stall-watch.mjs), so that a stall
// says where it was stuck; its diagnostic report goes under the scratch directory.
const timeoutS = Number(process.env.CHORIA_TEST_TIMEOUT_S ?? 180);
const reportDir = join(scratch, "reports");
mkdirSync(reportDir);
async function runFiles(list) {
  const stalls = join(scratch, `stalls-${Date.now()}.json`);
  const reporters = ["--test-reporter=spec", "--test-reporter-destination=stdout", `--test-reporter=${fileURLToPath(new URL("./stall-reporter.mjs", import.meta.url))}`, `--test-reporter-destination=${stalls}`];
  const diagnostics = ["--report-on-signal", "--report-signal=SIGUSR2", `--report-directory=${reportDir}`];
  const child = spawn(process.execPath, ["--import", "tsx", ...diagnostics, "--test", "--test-concurrency=2", `--test-timeout=${timeoutS * 1000}`, ...reporters, ...list], { stdio: "inherit", env });
  const watch = watchTestFiles(child.pid, { afterS: (timeoutS * 2) / 3, everyMs: Math.min(15_000, timeoutS * 100) });
  const [code] = await once(child, "exit");
  watch.stop();
  let report = { stalled: [], otherFailures: 0 };
  try {
    report = JSON.parse(readFileSync(stalls, "utf8"));
  } catch {
    // no report (the runner itself failed): the exit status says so
  }
  return { status: code ?? 1, watch, ...report };
}
let run = await runFiles(files);
// A file whose process timed out before reporting any test stalled while loading: twice a run
// stalled with no file named, once test/credentials/key-transport.test.ts (its tests are
// synchronous; alone it passed at once, every time) and once test/credentials/provisioning-jwt.test.ts.
// Such a file is run once more, and the run says so, with what the watch saw of its process. A
// test that failed, or hung after others of its file ran, is never run again.
if (run.status !== 0 && run.otherFailures === 0 && run.stalled.length > 0) {
  const stalled = run.stalled.map((f) => relative(process.cwd(), f));
  for (const f of run.stalled) console.error(describeStall(f, run.watch.snapshot(f), reportDir));
  console.error(`\n*** ${stalled.join(", ")}: stalled before its first test and timed out; running ${stalled.length === 1 ? "it" : "them"} once more ***\n`);
  run = await runFiles(run.stalled);
}
rmSync(scratch, { recursive: true, force: true });
if (env.CHORIA_REAL_SKIP) console.error(`\n*** real-Choria suite (test/real/) was NOT RUN: ${env.CHORIA_REAL_SKIP} ***`);
process.exit(run.status);
