/**
 * The audit's cost per provisioned node, on the daemon's main thread, with the daemon's own
 * createAuditSink writing to a file: (a) the decision record alone (buffered), as before the
 * configure line; (b) the configure line written and waited for (as the flow does before it
 * sends configure), then the record. Nodes run `concurrency` at a time, as workers do; the
 * variants alternate over rounds, and CPU time and wall time per node are reported for each.
 * Run: node --import tsx bench/audit.bench.ts   (AUDIT_BENCH_NODES, default 20000; AUDIT_BENCH_CONCURRENCY, default 200)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createAuditSink } from "../src/provision/audit.js";
import { percentile } from "../src/provision/fleet-progress.js";
import type { ConfiguringRecord, DecisionRecord } from "../src/types/index.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const POLICY = { name: "fleet", version: "2024.06.1", hash: "sha256:b35d0225f0e4c1c7a0b0b5d6a1c1f5e0f7b2a1c3d4e5f60718293a4b5c6d7e8f" };

function record(identity: string, time: string): DecisionRecord {
  return {
    identity,
    time,
    outcome: "configure",
    reason: "configure with broker set sfo (chosen by rule dc-sfo2)",
    fired: [
      { name: "env-staging", ruleSet: "", why: 'facts.environment equal "staging" (saw "staging")' },
      { name: "dc-sfo2", ruleSet: "fleet-sites", why: 'facts.dc equal "sfo2" (saw "sfo2")' },
    ],
    durations: { inventory: 3.1, gencsr: 40.2, policy: 0.2, sign: 5.3, configure: 3.4, restart: 2.1, total: 60.3, queued: 1 },
    policy: POLICY,
    brokerSet: "sfo",
    certificate: { serial: "6b699b5d53bd53800ced90042517d215", fingerprint: "5c7fc9d6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", notAfter: "2027-02-22T20:06:42.000Z" },
    configuration: { collectives: "mcollective", identity, loglevel: "info", "plugin.choria.middleware_hosts": "nats://b1.sfo:4222,nats://b2.sfo:4222", "plugin.choria.server.provision": "false" },
    configures: 1,
  };
}

async function round(dir: string, nodes: number, concurrency: number, withLine: boolean): Promise<{ cpuUs: number; wallMs: number; waitsMs: number[] }> {
  const file = join(dir, `audit-${withLine ? "b" : "a"}.jsonl`);
  rmSync(file, { force: true });
  const sink = createAuditSink({ file });
  let next = 0;
  const waitsMs: number[] = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < nodes) {
      const i = next++;
      const identity = `node-${i}.example.net`;
      const time = new Date().toISOString();
      if (withLine) {
        const line: ConfiguringRecord = { kind: "configuring", identity, time: new Date().toISOString(), attempt: 1, decision: { time, policy: POLICY, brokerSet: "sfo" }, certificate: { serial: "6b699b5d53bd53800ced90042517d215", fingerprint: "5c7fc9d6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678" } };
        const w0 = performance.now();
        await sink.configuring(line);
        waitsMs.push(performance.now() - w0);
      } else {
        // the flow's other awaits (the configure request) give the turn away as often
        await Promise.resolve();
      }
      sink.write(record(identity, time));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await sink.close();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { cpuUs: c.user + c.system, wallMs, waitsMs };
}

export async function measureAudit(nodes: number, concurrency: number, rounds = 6): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "audit-bench-"));
  try {
    await round(dir, Math.min(nodes, 5000), concurrency, true); // warm-up
    type Round = Awaited<ReturnType<typeof round>>;
    const a: Round[] = [];
    const b: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which goes first, so drift on a shared machine falls on both
      if (r % 2 === 0) {
        a.push(await round(dir, nodes, concurrency, false));
        b.push(await round(dir, nodes, concurrency, true));
      } else {
        b.push(await round(dir, nodes, concurrency, true));
        a.push(await round(dir, nodes, concurrency, false));
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const waits = b.flatMap((x) => x.waitsMs).sort((x, y) => x - y);
    const cpuA = median(a.map((x) => x.cpuUs)) / nodes;
    const cpuB = median(b.map((x) => x.cpuUs)) / nodes;
    return {
      nodes,
      concurrency,
      rounds,
      cpu_us_per_node_record_only: cpuA,
      cpu_us_per_node_with_configure_line: cpuB,
      cpu_us_per_node_added: cpuB - cpuA,
      wall_us_per_node_record_only: (median(a.map((x) => x.wallMs)) * 1000) / nodes,
      wall_us_per_node_with_configure_line: (median(b.map((x) => x.wallMs)) * 1000) / nodes,
      // how long a node's configure request waits for its line, over every round
      wait_ms_p50: percentile(waits, 50),
      wait_ms_p99: percentile(waits, 99),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const nodes = Number(process.env.AUDIT_BENCH_NODES ?? 20_000);
  const concurrency = Number(process.env.AUDIT_BENCH_CONCURRENCY ?? 200);
  const result: BenchResult = { name: "audit", metrics: await measureAudit(nodes, concurrency), notes: ["createAuditSink to a file on the machine's temp directory: the decision record alone, against the configure line written and waited for before it, median of alternating rounds"] };
  writeResult(result);
  printResult(result);
}
