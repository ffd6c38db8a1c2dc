/**
 * The provisioner under benchmark, in a process of its own so its CPU time and RSS are its
 * alone (the simulated fleet and the orchestrator run elsewhere). Driven over IPC by
 * bench/e2e.ts:
 *
 *   parent -> {type:"start", cfg}   child -> {type:"ready"}
 *   parent -> {type:"go"}           (CPU baseline; the fleet starts right after)
 *   child  -> {type:"progress"}     every second
 *   child  -> {type:"done", ...}    once every node has a final record (or on {type:"finish"})
 *   parent -> {type:"status"}       child -> {type:"status", ...}  (queue size, RSS)
 *   parent -> {type:"stop"}         child exits
 *
 * Per-record bookkeeping is kept to typed arrays and a Map so the bench itself costs the
 * provisioner as little as possible.
 */
import "./orphan-exit.js";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { resolveSettings, type ConfigFile } from "../src/config/index.js";
import { startDaemon, type DaemonHandle } from "../src/daemon/start.js";
import { createLogger } from "../src/daemon/logger.js";
import type { DecisionRecord } from "../src/types/index.js";
import { threadCpu, threadCpuSince, type ThreadCpu } from "./thread-cpu.js";

export interface DaemonChildConfig {
  config: ConfigFile;
  env: Record<string, string>;
  logFile: string;
  logLevel: string;
  /** nodes expected to reach a final record */
  nodes: number;
  paused?: boolean;
}

export interface DaemonChildSummary {
  settled: number;
  records: number;
  outcomes: Record<string, number>;
  /** ms since go */
  firstRecordMs: number;
  lastSettledMs: number;
  /** durations.total of final records, ms, sorted */
  totalMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  queuedMs: { p50: number; p99: number; max: number };
  stepMeansMs: Record<string, number>;
  rpcs: number;
  signs: number;
  decisions: number;
  cpuUserS: number;
  cpuSystemS: number;
  /** of cpuUser+System: the main thread's and the other threads' (sign pool, ledger writer, GC helpers) */
  threadCpuS: { mainS: number; otherS: number };
  peakRssMiB: number;
  /** maxRSS of the process from getrusage, whole life */
  maxRssMiB: number;
  heapUsedMiB: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** settled nodes per 250 ms bin since go */
  bins: number[];
  binMs: number;
  /** arrival verdicts by result, when arrival tracking is on */
  arrivals?: Record<string, number>;
}

const FINAL = new Set(["configure", "shutdown", "defer", "refused"]);
const RPC_STEPS = ["inventory", "gencsr", "configure", "restart", "shutdown", "release_update"];
const MiB = 2 ** 20;
const BIN_MS = 250;

function send(m: unknown): void {
  process.send?.(m);
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

let daemon: DaemonHandle | undefined;
let cfg: DaemonChildConfig;
let goAt = 0;
let cpu0: NodeJS.CpuUsage | undefined;
let threads0: ThreadCpu = new Map();
let peakRss = 0;
let settledCount = 0;
const arrivals: Record<string, number> = {};
let recordCount = 0;
let firstRecordAt = 0;
let lastSettledAt = 0;
let sent = false;
const latest = new Map<string, string>();
const outcomes: Record<string, number> = {};
let totals = new Float64Array(1024);
let queued = new Float64Array(1024);
let nFinal = 0;
const stepSum: Record<string, number> = {};
const stepN: Record<string, number> = {};
let rpcs = 0;
let signs = 0;
let decisions = 0;
const bins: number[] = [];
const eld = monitorEventLoopDelay({ resolution: 10 });

function sampleRss(): void {
  const r = process.memoryUsage.rss();
  if (r > peakRss) peakRss = r;
}
const sampler = setInterval(sampleRss, 100);
sampler.unref();

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

function onRecord(r: DecisionRecord): void {
  const now = performance.now();
  recordCount++;
  if (!firstRecordAt) firstRecordAt = now;
  outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  const d = r.durations;
  for (const s of RPC_STEPS) if (d[s] !== undefined) rpcs++;
  if (d.sign !== undefined) signs++;
  if (d.policy !== undefined) decisions++;
  for (const [k, v] of Object.entries(d)) {
    stepSum[k] = (stepSum[k] ?? 0) + v;
    stepN[k] = (stepN[k] ?? 0) + 1;
  }
  const prev = latest.get(r.identity);
  latest.set(r.identity, r.outcome);
  const wasFinal = prev !== undefined && FINAL.has(prev);
  const isFinal = FINAL.has(r.outcome);
  if (isFinal) {
    if (nFinal === totals.length) {
      totals = grow(totals);
      queued = grow(queued);
    }
    totals[nFinal] = d.total ?? 0;
    queued[nFinal] = d.queued ?? 0;
    nFinal++;
    if (!wasFinal) {
      settledCount++;
      lastSettledAt = now;
      const bin = Math.floor((now - goAt) / BIN_MS);
      while (bins.length <= bin) bins.push(0);
      bins[bin]++;
    }
  } else if (wasFinal) settledCount--;
  if (settledCount >= cfg.nodes && !sent) finish();
}

function summary(): DaemonChildSummary {
  sampleRss();
  const c = process.cpuUsage(cpu0);
  const t = totals.slice(0, nFinal).sort();
  const q = queued.slice(0, nFinal).sort();
  let sum = 0;
  for (const v of t) sum += v;
  const stepMeansMs: Record<string, number> = {};
  for (const k of Object.keys(stepSum)) stepMeansMs[k] = +(stepSum[k] / stepN[k]).toFixed(3);
  return {
    settled: settledCount,
    records: recordCount,
    outcomes,
    firstRecordMs: firstRecordAt ? firstRecordAt - goAt : 0,
    lastSettledMs: lastSettledAt ? lastSettledAt - goAt : 0,
    totalMs: { p50: pct(t, 50), p90: pct(t, 90), p99: pct(t, 99), max: t.length ? t[t.length - 1] : 0, mean: t.length ? sum / t.length : 0 },
    queuedMs: { p50: pct(q, 50), p99: pct(q, 99), max: q.length ? q[q.length - 1] : 0 },
    stepMeansMs,
    rpcs,
    signs,
    decisions,
    cpuUserS: c.user / 1e6,
    cpuSystemS: c.system / 1e6,
    threadCpuS: threadCpuSince(threads0),
    peakRssMiB: peakRss / MiB,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    heapUsedMiB: process.memoryUsage().heapUsed / MiB,
    eventLoopDelayMs: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
    bins,
    binMs: BIN_MS,
    ...(daemon?.arrival ? { arrivals: { ...arrivals } } : {}),
  };
}

function finish(): void {
  if (sent) return;
  sent = true;
  eld.disable();
  send({ type: "done", summary: summary() });
}

async function start(c: DaemonChildConfig): Promise<void> {
  cfg = c;
  const settings = resolveSettings(c.config, c.env);
  // the daemon's own logger at the daemon's own level, to a file: its per-node cost is part of the product
  const log = createLogger({ level: c.logLevel, file: c.logFile });
  daemon = await startDaemon(settings, { log });
  if (c.paused) daemon.provisioner.pause();
  daemon.provisioner.on("record", onRecord);
  daemon.arrival?.on("arrival", (r) => (arrivals[r.result] = (arrivals[r.result] ?? 0) + 1));
  send({ type: "ready", pid: process.pid });
}

process.on("message", (m: { type: string; cfg?: DaemonChildConfig }) => {
  switch (m.type) {
    case "start":
      start(m.cfg!).catch((e: Error) => {
        send({ type: "error", error: e.stack ?? e.message });
        process.exit(1);
      });
      break;
    case "go":
      goAt = performance.now();
      cpu0 = process.cpuUsage();
      threads0 = threadCpu();
      peakRss = 0;
      eld.enable();
      setInterval(() => send({ type: "progress", settled: settledCount, records: recordCount, queued: daemon?.provisioner.queue.size ?? 0, rssMiB: process.memoryUsage.rss() / MiB }), 1000).unref();
      break;
    case "finish":
      finish();
      break;
    case "status": {
      const gc = (globalThis as { gc?: () => void }).gc;
      const before = process.memoryUsage();
      gc?.();
      const after = process.memoryUsage();
      send({ type: "status", queued: daemon?.provisioner.queue.size ?? 0, waiting: daemon?.provisioner.queue.waiting ?? 0, rssMiB: before.rss / MiB, heapUsedMiB: before.heapUsed / MiB, rssAfterGcMiB: after.rss / MiB, heapUsedAfterGcMiB: after.heapUsed / MiB, maxRssMiB: process.resourceUsage().maxRSS / 1024 });
      break;
    }
    case "stop":
      void (async () => {
        await daemon?.stop(2000);
        send({ type: "stopped" });
        process.exit(0);
      })();
      break;
  }
});
