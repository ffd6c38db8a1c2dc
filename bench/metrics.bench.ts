/**
 * The metric calls one provisioned node makes on the daemon's main thread (provisioner.ts's
 * observer, on the children it binds once: four RPC timings, a policy evaluation, a signing,
 * the node's duration and counters; the queue and worker gauges are read at scrape time),
 * timed against the daemon's own createMetrics(), and a scrape of the resulting registry.
 * Run: node --import tsx bench/metrics.bench.ts   (METRICS_BENCH_NODES, default 200000)
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createMetrics } from "../src/metrics/metrics.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const RPCS = ["rpcutil#inventory", "choria_provision#gencsr", "choria_provision#configure", "choria_provision#restart"];

/** the children the daemon's observer binds once (provisioner.ts), then one node's calls on them */
function bind(m: ReturnType<typeof createMetrics>, site: string) {
  return {
    rpcs: RPCS.map((rpc) => [m.rpcTime.labels(site, rpc), m.rpcSeconds.labels(site, rpc)] as const),
    evalTime: m.policyEvalTime.labels(site),
    sign: m.signTime.labels(site, "builtin"),
    node: m.nodeDuration.labels(site, "configure"),
  };
}

function oneNode(m: ReturnType<typeof createMetrics>, b: ReturnType<typeof bind>, site: string, i: number): void {
  const s = 0.002 + (i % 97) / 10_000;
  for (const [sum, hist] of b.rpcs) {
    sum.observe(s);
    hist.observe(s);
  }
  m.policyEvaluations.labels(site, "fleet", "1.0.0").inc();
  m.policyDecisions.labels(site, "configure", "fleet", "1.0.0").inc();
  b.evalTime.observe(0.0003);
  b.sign.observe(0.004);
  b.node.observe(0.06 + (i % 31) / 1000);
  m.provisioned.labels(site).inc();
}

export async function measureMetricCalls(nodes: number): Promise<{ usPerNode: number; scrapeMs: number }> {
  const m = createMetrics("bench", { defaultMetrics: false });
  const b = bind(m, "bench");
  for (let i = 0; i < 20_000; i++) oneNode(m, b, "bench", i); // warm-up: JIT and series creation
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < nodes; i++) oneNode(m, b, "bench", i);
  const usPerNode = Number(process.hrtime.bigint() - t0) / 1000 / nodes;
  const s0 = process.hrtime.bigint();
  await m.registry.metrics();
  return { usPerNode, scrapeMs: Number(process.hrtime.bigint() - s0) / 1e6 };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const nodes = Number(process.env.METRICS_BENCH_NODES ?? 200_000);
  const r = await measureMetricCalls(nodes);
  const result: BenchResult = { name: "metric-calls", metrics: { nodes, us_per_node: r.usPerNode, scrape_ms: r.scrapeMs } };
  writeResult(result);
  printResult(result);
}
