/**
 * What sharing the certificate ledger under HA costs per issuance: the same bursts of rows go
 * through the local ledger alone (single instance) and through the replica (local commit and the
 * stream's ack awaited, then the row's echo applied back), alternating, on a real nats-server with
 * JetStream (file storage). Measured per certificate: wall time, this process's CPU, and the
 * nats-server's CPU; the latency one certificate waits (a burst of one); and how fast an instance
 * that joins reads rows from the stream into an empty ledger. Writes results/ledger-replication.json.
 *   node --import tsx bench/ledger-replication.bench.ts [--rounds 5] [--burst 256] [--bursts 20] [--replay 50000]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import { CertificateLedger, LedgerReplica, type LedgerEntry } from "../src/ca/index.js";
import { StreamLog } from "../src/ha/index.js";
import { startNatsServer } from "../src/transport/local-server.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const DAY = 86_400_000;
const r2 = (n: number) => Math.round(n * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** user+system CPU ms of a process from /proc (the nats-server is not our child's thread) */
function procCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ 100
}

let serialN = 0x1000000000000000n;
function entry(): LedgerEntry {
  const s = (serialN++).toString(16);
  const now = Date.now();
  return { serial: s, identity: `node-${s}.example.net`, sans: [`node-${s}.example.net`], notBefore: now - 300_000, notAfter: now + 365 * DAY, fingerprint: s.padStart(64, "0"), policyVersion: "default@12", issuedAt: now, signer: "builtin" };
}

interface Sample {
  wallMs: number;
  cpuMs: number;
  brokerCpuMs: number;
}

async function measure(o: { burst: number; bursts: number }, record: (e: LedgerEntry) => Promise<void>, settle: () => Promise<void>, brokerPid: number): Promise<Sample> {
  const n = o.burst * o.bursts;
  const c0 = process.cpuUsage();
  const b0 = procCpuMs(brokerPid);
  const t0 = performance.now();
  for (let b = 0; b < o.bursts; b++) await Promise.all(Array.from({ length: o.burst }, () => record(entry())));
  await settle();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wallMs: wall / n, cpuMs: (c.user + c.system) / 1000 / n, brokerCpuMs: (procCpuMs(brokerPid) - b0) / n };
}

export async function measureLedgerReplication(o: { rounds: number; burst: number; bursts: number; replay: number }): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "ledger-repl-bench-"));
  const srv = await startNatsServer({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  const local = CertificateLedger.open(join(dir, "local.sqlite"));
  const shared = CertificateLedger.open(join(dir, "shared.sqlite"));
  const log = await StreamLog.open({ nc });
  const replica = new LedgerReplica(shared, log, { backfillIntervalMs: 3_600_000 });
  try {
    await replica.start();
    const none = async (): Promise<void> => undefined;
    // warm both paths (JIT, SQLite pages, the stream's first block)
    await measure({ burst: o.burst, bursts: 2 }, (e) => local.record(e), none, srv.pid);
    await measure({ burst: o.burst, bursts: 2 }, (e) => replica.record(e), () => replica.caughtUp(), srv.pid);
    const alone: Sample[] = [];
    const repl: Sample[] = [];
    for (let r = 0; r < o.rounds; r++) {
      alone.push(await measure(o, (e) => local.record(e), none, srv.pid));
      // caughtUp: the echoes applied too, so their cost is in the round
      repl.push(await measure(o, (e) => replica.record(e), () => replica.caughtUp(), srv.pid));
    }
    // one certificate on its own: the latency a node's sign step gains
    const single = { alone: [] as number[], repl: [] as number[] };
    for (let i = 0; i < 200; i++) {
      let t = performance.now();
      await local.record(entry());
      single.alone.push(performance.now() - t);
      t = performance.now();
      await replica.record(entry());
      single.repl.push(performance.now() - t);
    }
    await replica.caughtUp();
    if (replica.status().unreplicated !== 0) throw new Error(`${replica.status().unreplicated} rows unconfirmed after the echoes`);

    // an instance that joins: fill the stream, then read it into an empty ledger
    const filler = new LedgerReplica(CertificateLedger.open(join(dir, "filler.sqlite")), await StreamLog.open({ nc }), { backfillIntervalMs: 3_600_000 });
    await filler.start();
    for (let i = 0; i < o.replay; i += 1000) await filler.publish(Array.from({ length: Math.min(1000, o.replay - i) }, entry));
    await filler.close();
    filler.ledger.close();
    const tail = await log.tail();
    const joiner = new LedgerReplica(CertificateLedger.open(join(dir, "joiner.sqlite")), await StreamLog.open({ nc }), { backfillIntervalMs: 3_600_000 });
    const t = performance.now();
    await joiner.start();
    await joiner.appliedUpTo(tail);
    const replayS = (performance.now() - t) / 1000;
    const joined = joiner.ledger.count();
    await joiner.close();
    joiner.ledger.close();
    // the replica under test read the filler's rows too
    await replica.appliedUpTo(tail);
    const want = shared.count();
    if (joined !== want) throw new Error(`the joiner holds ${joined} rows, the stream ${want}`);

    const m = (xs: Sample[], k: keyof Sample) => r2(median(xs.map((x) => x[k])) * 1000) / 1000;
    const us = (ms: number) => r2(ms * 1000);
    return {
      name: o.burst === 256 ? "ledger-replication" : `ledger-replication-burst${o.burst}`,
      metrics: {
        rounds: o.rounds,
        certificates_per_round: o.burst * o.bursts,
        burst: o.burst,
        local_wall_us_per_cert: us(m(alone, "wallMs")),
        replicated_wall_us_per_cert: us(m(repl, "wallMs")),
        local_cpu_us_per_cert: us(m(alone, "cpuMs")),
        replicated_cpu_us_per_cert: us(m(repl, "cpuMs")),
        added_cpu_us_per_cert: us(m(repl, "cpuMs") - m(alone, "cpuMs")),
        broker_cpu_us_per_cert: us(m(repl, "brokerCpuMs")),
        local_single_p50_ms: r2(median(single.alone)),
        replicated_single_p50_ms: r2(median(single.repl)),
        replay_rows: joined,
        replay_messages: tail,
        replay_rows_per_s: Math.round(joined / replayS),
        load1: r2(loadavg()[0]!),
      },
      notes: [
        "local: CertificateLedger.record, bursts of `burst` rows, one transaction and fsync per burst (single instance, as today)",
        "replicated: LedgerReplica.record (the burst as one stream message, its ack awaited, then the local commit), and the replica reading every row's echo back from the stream; alternating rounds, medians",
        "cpu: this process's user+system CPU per certificate; broker: the nats-server's (JetStream file storage) per certificate, from /proc in 10 ms ticks",
        "single: one certificate at a time, the latency a node's sign step gains",
        "replay: an instance with an empty ledger reading the whole stream (rows/s)",
      ],
    };
  } finally {
    await replica.close();
    local.close();
    shared.close();
    await nc.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const arg = (k: string, d: number) => {
    const i = process.argv.indexOf(k);
    return i >= 0 ? Number(process.argv[i + 1]) : d;
  };
  const result = await measureLedgerReplication({ rounds: arg("--rounds", 5), burst: arg("--burst", 256), bursts: arg("--bursts", 20), replay: arg("--replay", 50_000) });
  writeResult(result);
  printResult(result);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
