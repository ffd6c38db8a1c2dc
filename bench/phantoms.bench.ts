/**
 * The cost of phantom announcements (issue 17's goal): startup events for 2,000 servers that do
 * not exist, published just before a 500-node fleet starts, may slow that fleet by at most 25%
 * against the same fleet without them. Every run is a fresh end-to-end run (e2e.ts runE2e: its
 * own nats-server, the fleet and the daemon in processes of their own, the daemon logging at info
 * to a file with its audit log on); runs without and with phantoms alternate in pairs (the order
 * flips every pair) so machine load hits both alike, and the goal is judged on the median of the
 * pairs' ratios. Writes phantoms.json (bench/results/ or --out).
 *
 *   node --import tsx bench/phantoms.bench.ts [--pairs 5] [--nodes 500] [--phantoms 2000] [--out DIR]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initBuiltinCa } from "../src/ca/index.js";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../src/protocol/index.js";
import { closeNats, connectNats } from "../src/transport/index.js";
import { REPO, runE2e, type E2eResult } from "./e2e.js";
import { median, printResult, writeResult, type BenchResult } from "./harness.js";

/** at most this much slower with the phantoms than without */
export const PHANTOM_GOAL_RATIO = 1.25;

export interface PhantomRun {
  phantoms: number;
  /** from the fleet's start (after the phantoms were published) to its last node settled */
  wallMs: number;
  provisionerCpuS: number;
  gone: number;
}

/** startup events for `n` servers that do not exist, on the intake's subject, flushed to the broker */
async function announcePhantoms(url: string, n: number, tag: string): Promise<void> {
  const nc = await connectNats({ servers: url, name: "phantom-publisher" });
  try {
    for (let i = 0; i < n; i++) {
      const id = `phantom-${tag}-${i}.ghost.example.net`;
      nc.publish(lifecycleSubject("startup", "provision_mode_server"), encodeLifecycle(newLifecycleEvent("startup", id, "provision_mode_server")));
    }
    await nc.flush();
  } finally {
    await closeNats(nc);
  }
}

function run(r: E2eResult, phantoms: number): PhantomRun {
  return { phantoms, wallMs: r.wallMs - r.fleetStartMs, provisionerCpuS: r.provisionerCpuS, gone: r.daemon.outcomes.gone ?? 0 };
}

export async function phantomBench(o: { pairs: number; nodes: number; phantoms: number; caDir: string; log?: (s: string) => void }): Promise<BenchResult> {
  const base: PhantomRun[] = [];
  const ghost: PhantomRun[] = [];
  for (let pair = 0; pair < o.pairs; pair++) {
    const order = pair % 2 === 0 ? [0, o.phantoms] : [o.phantoms, 0];
    for (const n of order) {
      const r = await runE2e({ nodes: o.nodes, caDir: o.caDir, beforeFleet: n > 0 ? (url) => announcePhantoms(url, n, String(pair)) : undefined });
      const x = run(r, n);
      (n > 0 ? ghost : base).push(x);
      o.log?.(`pair ${pair + 1}/${o.pairs} ${n > 0 ? `with ${n} phantoms` : "without phantoms"}: ${(x.wallMs / 1000).toFixed(2)} s, provisioner CPU ${x.provisionerCpuS.toFixed(2)} s, gone ${x.gone}`);
    }
  }
  const ratios = base.map((b, i) => ghost[i]!.wallMs / b.wallMs);
  const ratio = median(ratios);
  const perPhantomMs = median(base.map((b, i) => (ghost[i]!.wallMs - b.wallMs) / o.phantoms));
  const cpuPerPhantomMs = median(base.map((b, i) => ((ghost[i]!.provisionerCpuS - b.provisionerCpuS) * 1000) / o.phantoms));
  return {
    name: "phantoms",
    goal: { metric: "slowdown_ratio", max: PHANTOM_GOAL_RATIO },
    metrics: {
      nodes: o.nodes,
      phantoms: o.phantoms,
      pairs: o.pairs,
      slowdown_ratio: +ratio.toFixed(3),
      without_s_median: +(median(base.map((r) => r.wallMs)) / 1000).toFixed(3),
      with_s_median: +(median(ghost.map((r) => r.wallMs)) / 1000).toFixed(3),
      added_ms_per_phantom: +perPhantomMs.toFixed(4),
      provisioner_cpu_ms_per_phantom: +cpuPerPhantomMs.toFixed(4),
      phantoms_recorded_gone_min: Math.min(...ghost.map((r) => r.gone)),
    },
    notes: [
      `ratio: the median of ${o.pairs} alternating pairs' (fleet time with ${o.phantoms} phantoms) / (fleet time without); fleet time from the fleet's start (the phantoms published just before it) to the last of its ${o.nodes} nodes settled`,
      `pair ratios: ${ratios.map((x) => x.toFixed(3)).join(", ")}`,
      `without (s): ${base.map((r) => (r.wallMs / 1000).toFixed(2)).join(", ")}; with (s): ${ghost.map((r) => (r.wallMs / 1000).toFixed(2)).join(", ")}`,
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { pairs: { type: "string", default: "5" }, nodes: { type: "string", default: "500" }, phantoms: { type: "string", default: "2000" }, out: { type: "string" } } });
  const caDir = mkdtempSync(join(tmpdir(), "cp-bench-phantoms-"));
  try {
    await initBuiltinCa(caDir, { key: "ecdsa" });
    const r = await phantomBench({ pairs: Number(values.pairs), nodes: Number(values.nodes), phantoms: Number(values.phantoms), caDir, log: (s) => process.stdout.write(s + "\n") });
    printResult(r);
    process.stdout.write(`written to ${writeResult(r, values.out ?? join(REPO, "bench/results"))}\n`);
  } finally {
    rmSync(caDir, { recursive: true, force: true });
  }
}
