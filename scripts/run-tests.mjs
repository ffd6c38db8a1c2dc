#!/usr/bin/env node
// Runs every test/**/*.test.ts through node:test with tsx. Node 20's --test does not
// glob .ts files itself, so we list them; extra args filter by substring of the path.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
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
// a test that never settles fails by name after 3 minutes instead of holding CI for its 90 (the
// slowest test takes about 40 s on 2 busy cores); twice a run stalled here with no test named
const res = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=180000", "--test-reporter=spec", ...files], { stdio: "inherit", env });
if (env.CHORIA_REAL_SKIP) console.error(`\n*** real-Choria suite (test/real/) was NOT RUN: ${env.CHORIA_REAL_SKIP} ***`);
process.exit(res.status ?? 1);
