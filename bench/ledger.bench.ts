/**
 * The certificate ledger at fleet scale: 1M rows in a real SQLite file (WAL, synchronous=FULL, as
 * the daemon opens it), then the reads operators and the metrics make: a lookup by identity
 * (`ca list --identity`), the expiry summary the gauges read (counts within 7/30 days and the
 * earliest notAfter), the first page of `ca list --expiring 30d`, a lookup by serial, a renewal
 * pass (`renewalsDue`), and the record rate through the batched path the signer uses. Writes results/ledger.json.
 *   node --import tsx bench/ledger.bench.ts [--rows 1000000]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CertificateLedger, type LedgerEntry } from "../src/ca/index.js";
import { printResult, writeResult, type BenchResult } from "./harness.js";

const DAY = 86_400_000;
const r2 = (n: number) => Math.round(n * 100) / 100;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function timeMany(n: number, f: (i: number) => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f(i);
    out.push(performance.now() - t);
  }
  return out;
}

export async function measureLedger(rows = 1_000_000): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "ledger-bench-"));
  const path = join(dir, "ledger.sqlite");
  const ledger = CertificateLedger.open(path);
  try {
    const now = Date.now();
    const identities = Math.floor(rows / 2); // two certificates per node on average (a renewal each)
    const entry = (i: number): LedgerEntry => ({
      serial: (0x1000000000000000n + BigInt(i) * 7919n).toString(16),
      identity: `node${i % identities}.example.net`,
      sans: [`node${i % identities}.example.net`],
      notBefore: now - DAY,
      // spread over a year, so 30 days hold about 8% of the rows
      notAfter: now + ((i * 2654435761) % 365) * DAY + (i % 1000) * 1000,
      fingerprint: (i * 31).toString(16).padStart(64, "0"),
      policyVersion: "default@12",
      // issued about 300 days ago, in order: a renewal pass finds the fleet's old certificates due
      issuedAt: now - 300 * DAY + i,
      signer: "builtin",
    });
    const fill = performance.now();
    const BATCH = 10_000;
    for (let i = 0; i < rows; i += BATCH) {
      await Promise.all(Array.from({ length: Math.min(BATCH, rows - i) }, (_, k) => ledger.record(entry(i + k))));
    }
    const fillS = (performance.now() - fill) / 1000;

    const byId = timeMany(1000, (i) => {
      const got = ledger.byIdentity(`node${(i * 7907) % identities}.example.net`);
      if (got.length < 1) throw new Error("lookup found nothing");
    });
    const bySerial = timeMany(1000, (i) => {
      if (!ledger.bySerial(entry((i * 104729) % rows).serial)) throw new Error("serial not found");
    });
    let summary = ledger.expirySummary(now);
    const summaryT = timeMany(20, () => (summary = ledger.expirySummary(now)));
    const page = timeMany(50, () => ledger.expiring(now + 30 * DAY, { from: now, limit: 1000 }));
    // a renewal pass: the first 100 nodes due within 30 days, and every node due (the worst case: the whole window is read)
    const due = timeMany(50, () => ledger.renewalsDue({ now, windowMs: 30 * DAY, limit: 100 }));
    let dueAll = 0;
    const dueAllT = timeMany(3, () => (dueAll = ledger.renewalsDue({ now, windowMs: 30 * DAY, limit: -1 }).length));
    let all = 0;
    const fullScan = timeMany(3, () => (all = ledger.expiring(now + 30 * DAY, { from: now }).length));

    // the signer's path: records arriving in bursts of 256 (one commit, one fsync, per burst)
    // and how long the main thread was busy for it (event-loop utilisation: the daemon's RPCs and
    // policy wait while it is; the commit's fsync used to be there)
    const burst = 256;
    const t = performance.now();
    const elu0 = performance.eventLoopUtilization();
    for (let b = 0; b < 40; b++) await Promise.all(Array.from({ length: burst }, (_, k) => ledger.record(entry(rows + b * burst + k))));
    const recordRate = (40 * burst) / ((performance.now() - t) / 1000);
    const mainUsPerRow = (performance.eventLoopUtilization(elu0).active * 1000) / (40 * burst);

    return {
      name: "ledger",
      metrics: {
        rows,
        fill_seconds: r2(fillS),
        db_mb: r2(statSync(path).size / 1e6),
        by_identity_p50_ms: r2(quantile(byId, 0.5)),
        by_identity_p99_ms: r2(quantile(byId, 0.99)),
        by_serial_p50_ms: r2(quantile(bySerial, 0.5)),
        expiry_summary_p50_ms: r2(quantile(summaryT, 0.5)),
        expiry_summary_max_ms: r2(Math.max(...summaryT)),
        expiring_30d_rows: summary.within30d,
        expiring_30d_first_1000_p50_ms: r2(quantile(page, 0.5)),
        expiring_30d_all_rows_p50_ms: r2(quantile(fullScan, 0.5)),
        expiring_30d_all_rows_returned: all,
        renewals_due_first_100_p50_ms: r2(quantile(due, 0.5)),
        renewals_due_all_p50_ms: r2(quantile(dueAllT, 0.5)),
        renewals_due_all_returned: dueAll,
        record_per_s_bursts_of_256: Math.round(recordRate),
        record_main_thread_us_per_row: r2(mainUsPerRow),
        load1: r2(loadavg()[0]!),
      },
      notes: [
        "a real SQLite file in the temp directory, opened as the daemon opens it (WAL, synchronous=FULL)",
        "by_identity: ca list --identity; expiry_summary: the gauges' three numbers (two counts over the not_after index and a min); expiring_30d_first_1000: the first page of ca list --expiring 30d; all_rows: every row of it, decoded to objects",
        "renewals_due: CertificateLedger.renewalsDue over a 30-day window, each node's latest certificate only (two a node): the first 100 (one renewal pass with 100 tokens) and all of them",
        "record rate: bursts of 256 records, each burst one transaction and one fsync, as the signer's batched path commits them",
      ],
    };
  } finally {
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--rows");
  const result = await measureLedger(i >= 0 ? Number(process.argv[i + 1]) : 1_000_000);
  writeResult(result);
  printResult(result);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
