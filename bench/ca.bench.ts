/**
 * Built-in CA throughput: CSR parse + self-signature verify + key check + issue + sign, end to end
 * through the worker pool, for RSA-2048 node CSRs (what gencsr produces). Runs each CA key kind
 * with one worker thread and with one per core.
 *
 *   node --import tsx bench/ca.bench.ts [--seconds 3] [--csrs 200]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBuiltinCa, openBuiltinCa, type BuiltinCa } from "../src/ca/index.js";
import { generateKeys, makeCsr } from "../test/ca/csr-fixtures.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const SECONDS = arg("seconds", 3);
const CSRS = arg("csrs", 200);
// enough requests in flight to keep every worker's batch full
const WINDOW = 256;

export async function csrPool(n: number): Promise<Array<{ identity: string; csrPem: string }>> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const identity = `node${i}.bench.example.net`;
      const keys = await generateKeys({ kind: "rsa", bits: 2048 });
      return { identity, csrPem: await makeCsr({ keys, cn: identity, subject: { C: "GB", O: "Bench" } }) };
    }),
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function drive(ca: BuiltinCa, csrs: Array<{ identity: string; csrPem: string }>, ms: number): Promise<{ n: number; secs: number; lat: number[] }> {
  let next = 0;
  let n = 0;
  const lat: number[] = [];
  const end = performance.now() + ms;
  const t0 = performance.now();
  async function lane(): Promise<void> {
    while (performance.now() < end) {
      const c = csrs[next++ % csrs.length]!;
      const s = performance.now();
      await ca.sign({ identity: c.identity, csrPem: c.csrPem, profile: { validityDays: 365, sans: [] } });
      lat.push(performance.now() - s);
      n++;
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, lane));
  return { n, secs: (performance.now() - t0) / 1000, lat };
}

export interface SignRate {
  signsPerSec: number;
  signs: number;
  workers: number;
  p50Ms: number;
  p99Ms: number;
  /** this process's CPU (main thread and sign workers) per sign */
  cpuMsPerSign: number;
}

/**
 * CSR verify + sign rate of the built-in CA through its worker pool, as the daemon uses it;
 * `npm run bench` reuses this for the machine bound. `csrs` are made once by the caller.
 */
export async function measureSignRate(o: { key?: "ecdsa" | "rsa"; workers?: number; seconds?: number; csrs: Array<{ identity: string; csrPem: string }> }): Promise<SignRate> {
  const tmp = mkdtempSync(join(tmpdir(), "ca-bench-"));
  try {
    await initBuiltinCa(tmp, { key: o.key ?? "ecdsa" });
    // every core, as each bound is measured alone on the machine
    const ca = await openBuiltinCa(tmp, { workers: o.workers ?? availableParallelism() });
    try {
      await drive(ca, o.csrs, 500); // warm-up: JIT, worker start
      const cpu0 = process.cpuUsage();
      const r = await drive(ca, o.csrs, (o.seconds ?? 3) * 1000);
      const c = process.cpuUsage(cpu0);
      const lat = r.lat.sort((a, b) => a - b);
      return { signsPerSec: Math.round(r.n / r.secs), signs: r.n, workers: o.workers ?? availableParallelism(), p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), cpuMsPerSign: (c.user + c.system) / 1000 / Math.max(1, r.n) };
    } finally {
      await ca.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  process.stderr.write(`generating ${CSRS} RSA-2048 CSRs...\n`);
  const csrs = await csrPool(CSRS);
  const tmp = mkdtempSync(join(tmpdir(), "ca-bench-"));
  try {
    for (const key of ["ecdsa", "rsa"] as const) {
      const dir = join(tmp, key);
      await initBuiltinCa(dir, { key });
      for (const [label, workers] of [["1thread", 1], ["pool", cores]] as const) {
        const ca = await openBuiltinCa(dir, { workers });
        await drive(ca, csrs, 500); // warm-up: JIT, worker start
        const r = await drive(ca, csrs, SECONDS * 1000);
        await ca.close();
        const lat = r.lat.sort((a, b) => a - b);
        const result: BenchResult = {
          name: `ca-sign-${key}-${label}`,
          metrics: {
            signs_per_sec: Math.round(r.n / r.secs),
            workers,
            signs: r.n,
            p50_ms: percentile(lat, 50),
            p99_ms: percentile(lat, 99),
          },
          notes: [
            `CA key ${key === "rsa" ? "RSA-2048" : "ECDSA P-256"}; node CSRs RSA-2048 SHA256WithRSA, ${CSRS} distinct, round-robin`,
            `each sign = PEM decode + PKCS#10 parse + self-signature verify + key check + pkijs certificate build + CA signature`,
            `${WINDOW} requests in flight (latency includes queueing)`,
          ],
        };
        if (key === "ecdsa" && label === "pool") result.goal = { metric: "signs_per_sec", min: 1000 };
        writeResult(result);
        printResult(result);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// run as a script; imported by bench/run.ts for the machine bound
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
