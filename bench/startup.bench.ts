/**
 * Start-up time of the command line, compiled (dist/ through bin/, as installed) against the
 * sources through tsx: `--help` and `policy eval --inventory <fixture>`, wall time of the whole
 * process. The two variants alternate, A then B, over several pairs so a slow spell of the
 * machine hits both; median and min are reported. Run: node --import tsx bench/startup.bench.ts
 * [--pairs N]. It builds dist/ first.
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const VARIANTS = {
  compiled: [resolve(REPO, "bin/choria-provisioner.js")],
  tsx: ["--import", "tsx", resolve(REPO, "src/cli/main.ts")],
} as const;
const COMMANDS = {
  help: ["--help"],
  eval: ["policy", "eval", "--inventory", resolve(REPO, "inventories/web1.example.net.json"), "--policies", resolve(REPO, "policies")],
} as const;

function timeOnce(args: readonly string[]): number {
  const t0 = process.hrtime.bigint();
  // NODE_OPTIONS emptied: a loader inherited from this process would make both variants tsx
  const r = spawnSync(process.execPath, args, { cwd: REPO, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r1 = (v: number): number => Math.round(v * 10) / 10;

export function measureStartup(pairs = 10): BenchResult {
  const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: REPO, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
  const metrics: Record<string, number> = { pairs, load1_before: r1(loadavg()[0]!) };
  for (const [cmd, cmdArgs] of Object.entries(COMMANDS)) {
    const times: Record<keyof typeof VARIANTS, number[]> = { compiled: [], tsx: [] };
    // one warm-up each (file cache), not counted
    for (const v of Object.values(VARIANTS)) timeOnce([...v, ...cmdArgs]);
    for (let i = 0; i < pairs; i++) {
      for (const v of Object.keys(VARIANTS) as (keyof typeof VARIANTS)[]) times[v].push(timeOnce([...VARIANTS[v], ...cmdArgs]));
    }
    for (const v of Object.keys(VARIANTS) as (keyof typeof VARIANTS)[]) {
      metrics[`${cmd}_${v}_median_ms`] = r1(median(times[v]));
      metrics[`${cmd}_${v}_min_ms`] = r1(Math.min(...times[v]));
    }
    metrics.load1_after = r1(loadavg()[0]!);
    metrics[`${cmd}_tsx_over_compiled_median`] = Math.round((metrics[`${cmd}_tsx_median_ms`]! / metrics[`${cmd}_compiled_median_ms`]!) * 100) / 100;
  }
  return {
    name: "startup",
    metrics,
    notes: [
      "wall time of one process from spawn to exit; compiled = node bin/choria-provisioner.js (dist/), tsx = node --import tsx src/cli/main.ts",
      "variants alternate within each pair, after one uncounted warm-up run each; eval = policy eval --inventory inventories/web1.example.net.json on the shipped policies",
    ],
  };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--pairs");
  const result = measureStartup(i >= 0 ? Number(process.argv[i + 1]) : 10);
  writeResult(result);
  printResult(result);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
