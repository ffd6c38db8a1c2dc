/**
 * Simulator scale: start-up time and memory for 10k and 100k nodes, discovery of the whole
 * fleet, and what a CSR costs. Each size runs in its own process so RSS is not polluted by the
 * previous run. Run: node --import tsx bench/sim.bench.ts [sizes...]   (default 10000 100000)
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connectNats, RpcClient, startNatsServer } from "../src/transport/index.js";
import { KeyPool, startFleet } from "../src/sim/index.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const MiB = 2 ** 20;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function measure(nodes: number): Promise<Record<string, number>> {
  const srv = await startNatsServer();
  try {
    gc();
    const rssBase = process.memoryUsage().rss;
    const t0 = performance.now();
    const fleet = await startFleet({ servers: srv.url, nodes, seed: 1, startupRampMs: 0 });
    const listeningMs = performance.now() - t0;
    await fleet.startupComplete;
    const startupMs = performance.now() - t0;
    gc();
    const m = process.memoryUsage();

    const nc = await connectNats({ servers: srv.url, name: "bench-provisioner" });
    const client = new RpcClient({ nc, identity: "bench.example.net" });
    client.start();
    const td = performance.now();
    const found = await client.discover({ timeoutMs: 60_000, quietMs: 2000 });
    const discoveryMs = performance.now() - td - 2000;

    // CSR cost as the node pays it, and round trips through the broker
    const sample = fleet.identities.slice(0, 500);
    const tc = performance.now();
    await Promise.all(sample.map((id) => client.call(id, "choria_provision", "gencsr", {}, { timeoutMs: 60_000 })));
    const csrRpcMs = performance.now() - tc;
    const t = fleet.report().totals;
    gc();
    const rssAfter = process.memoryUsage().rss;
    await client.close();
    await nc.close();
    const ts = performance.now();
    await fleet.stop();
    return {
      nodes,
      listening_ms: Math.round(listeningMs),
      startup_events_done_ms: Math.round(startupMs),
      rss_mib: +(m.rss / MiB).toFixed(1),
      rss_delta_mib: +((m.rss - rssBase) / MiB).toFixed(1),
      heap_used_mib: +(m.heapUsed / MiB).toFixed(1),
      bytes_per_node: Math.round((m.rss - rssBase) / nodes),
      discovered: found.length,
      discovery_ms: Math.round(discoveryMs),
      csr_ms_in_node: +(t.csrMs / t.csrs).toFixed(3),
      gencsr_rpc_per_s: Math.round((sample.length / csrRpcMs) * 1000),
      rss_after_discovery_and_csrs_mib: +(rssAfter / MiB).toFixed(1),
      stop_ms: Math.round(performance.now() - ts),
    };
  } finally {
    await srv.stop();
  }
}

async function keygen(): Promise<number> {
  const pool = await KeyPool.create({ size: 8, cacheDir: false });
  return +(pool.generatedMs / pool.size).toFixed(1);
}

if (process.argv[2] === "--child") {
  const n = Number(process.argv[3]);
  const out = n === 0 ? { keygen_ms_per_key_wall_8_parallel: await keygen() } : await measure(n);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const self = fileURLToPath(import.meta.url);
const metrics: Record<string, number> = {};
const notes: string[] = [];
for (const n of [0, ...(sizes.length ? sizes : [10_000, 100_000])]) {
  const r = spawnSync(process.execPath, ["--expose-gc", "--max-old-space-size=4096", "--import", "tsx", self, "--child", String(n)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (r.status !== 0) throw new Error(`child for ${n} nodes failed (${r.status})`);
  const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>;
  const prefix = n === 0 ? "" : `n${n / 1000}k_`;
  for (const [k, v] of Object.entries(res)) if (k !== "nodes") metrics[prefix + k] = v;
  notes.push(n === 0 ? `RSA-2048 key generation: ${res.keygen_ms_per_key_wall_8_parallel} ms wall per key (8 in parallel on the libuv pool); the fleet shares a cached pool of 64` : `${n} nodes: ${JSON.stringify(res)}`);
}
const result: BenchResult = {
  name: "sim",
  goal: sizes.length === 0 || sizes.includes(100_000) ? { metric: "n100k_rss_mib", max: 500 } : undefined,
  metrics,
  notes,
};
printResult(result);
writeResult(result);
