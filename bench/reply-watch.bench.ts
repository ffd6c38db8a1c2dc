/**
 * The cost of conflict detection per node: bound-rpc (the daemon's RpcClient walking nodes
 * through inventory, gencsr, configure, restart against a trivial responder) with and without
 * a reply watch per node, alternated A/B so machine load hits both alike. Prints client CPU ms
 * per RPC and RPCs per second for each, and the ratio.
 *
 *   node --import tsx bench/reply-watch.bench.ts [rounds=3] [seconds=3]
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBuiltinCa } from "../src/ca/index.js";
import { flowRequests, measureRpcRate, type RpcRate } from "./e2e.js";

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 3);
const caDir = mkdtempSync(join(tmpdir(), "cp-bench-watch-"));
await initBuiltinCa(caDir, { key: "ecdsa" });
const flow = await flowRequests(caDir);
const runs: Record<"off" | "on", RpcRate[]> = { off: [], on: [] };
for (let i = 0; i < rounds; i++) {
  for (const mode of i % 2 ? (["on", "off"] as const) : (["off", "on"] as const)) {
    const r = await measureRpcRate({ seconds, flow, watch: mode === "on" });
    runs[mode].push(r);
    console.log(`${mode.padEnd(3)} ${r.rpcsPerSec} rpc/s, client ${((r.clientCpuS * 1000) / r.rpcs).toFixed(4)} ms CPU/rpc, p50 ${r.p50Ms.toFixed(1)} ms`);
  }
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cpu = (m: "off" | "on") => mean(runs[m].map((r) => (r.clientCpuS * 1000) / r.rpcs));
const rate = (m: "off" | "on") => mean(runs[m].map((r) => r.rpcsPerSec));
console.log(`watch on/off: client CPU per rpc x${(cpu("on") / cpu("off")).toFixed(3)}, rpc/s x${(rate("on") / rate("off")).toFixed(3)}`);
