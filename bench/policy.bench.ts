/**
 * Policy evaluation throughput on one core: the default fleet policy (~20 rules over three
 * rule sets) against a varied set of inventories. Run: node --import tsx bench/policy.bench.ts
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPolicySet } from "../src/policy/index.js";
import type { Inventory } from "../src/types/index.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const DCS = [
  ["ams1", "nl"],
  ["ams2", "nl"],
  ["nyc1", "us"],
  ["sfo2", "us"],
  ["fra1", "de"],
  ["lon1", "gb"],
  ["par1", "fr"],
  ["tyo1", "jp"],
  ["zrh9", "de"],
] as const;
const ROLES = ["web", "worker", "cache", "db", "lb", "decommissioned"];
const ENVS = ["production", "staging", "dev"];
const OSES = [{ family: "Debian", name: "Debian", release: "12" }, { family: "RedHat", name: "AlmaLinux", release: "9.4" }];

export function inventories(n: number): Inventory[] {
  return Array.from({ length: n }, (_, i) => {
    const [dc, country] = DCS[i % DCS.length]!;
    return {
      identity: `node${i}.example.net`,
      facts: {
        country,
        dc,
        role: ROLES[(i * 7) % ROLES.length],
        environment: ENVS[(i * 3) % ENVS.length],
        os: OSES[i % OSES.length],
        hardware: { cpus: 4, memory_mb: i % 2 ? 32768 : 8192 },
        network: { hostname: `node${i}`, interface: "eth0", ip: `10.${(i % 8) + 1}.${i % 250}.${(i % 200) + 1}`, netmask: "255.255.0.0" },
      },
      agents: ["choria_provision", "choria_util", "discovery", "rpcutil"],
      classes: [],
      collectives: ["provisioning"],
      mainCollective: "provisioning",
      dataPlugins: [],
      machines: [],
      version: i % 10 === 0 ? "0.28.0" : "0.29.4",
      upgradable: i % 3 === 0,
    };
  });
}

export interface EvalRate {
  evalsPerSec: number;
  evals: number;
  seconds: number;
  rules: number;
  concurrency: number;
  outcomes: Record<string, number>;
  policy: string;
}

/** Policy evaluations per second on one core; `npm run bench` reuses this for the machine bound. */
export async function measureEvalRate(o: { seconds?: number; concurrency?: number; policiesDir?: string; rulesDir?: string } = {}): Promise<EvalRate> {
  const ps = await loadPolicySet({ policiesDir: o.policiesDir ?? "policies", rulesDir: o.rulesDir ?? "rules" });
  const invs = inventories(1000);
  const concurrency = o.concurrency ?? 16;
  const seconds = o.seconds ?? 3;

  // warm up the JIT and the engine pool
  for (let i = 0; i < 2000; i++) await ps.evaluate(invs[i % invs.length]!);

  const outcomes: Record<string, number> = {};
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  // `concurrency` evaluations in flight, like workers of the daemon sharing one policy set
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (process.hrtime.bigint() < deadline) {
        const d = await ps.evaluate(invs[i % invs.length]!);
        outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
        done++;
        i += concurrency;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  return { evalsPerSec: Math.round(done / elapsed), evals: done, seconds: elapsed, rules: ps.rules.length, concurrency, outcomes, policy: `${ps.ref.name} ${ps.ref.version}` };
}

async function main(): Promise<void> {
  const r = await measureEvalRate({ seconds: Number(process.env.POLICY_BENCH_SECONDS ?? 3), concurrency: Number(process.env.POLICY_BENCH_CONCURRENCY ?? 16) });
  const result: BenchResult = {
    name: "policy-eval",
    goal: { metric: "evals_per_sec", min: 10000 },
    metrics: { evals_per_sec: r.evalsPerSec, evals: r.evals, seconds: r.seconds, rules: r.rules, concurrency: r.concurrency },
    notes: [`policy ${r.policy}`, `outcomes ${JSON.stringify(r.outcomes)}`],
  };
  writeResult(result);
  printResult(result);
}

// run as a script; imported by bench/run.ts for the machine bound
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
