/**
 * Following a provisioning run from its decision records: which nodes are settled, counts by
 * outcome, throughput and latency. Shared by `demo`, `bench` and the end-to-end tests.
 */
import type { DecisionRecord } from "../types/index.js";

export interface FleetView {
  identities: string[];
  report(): { nodes: Array<{ identity: string; mode: string }> };
  /** the node's faults mean it never answers anything (a simulated fleet knows this up front) */
  neverAnswers?(identity: string): boolean;
}

export function latestRecords(records: DecisionRecord[]): Map<string, DecisionRecord> {
  const m = new Map<string, DecisionRecord>();
  for (const r of records) m.set(r.identity, r);
  return m;
}

const FINAL = new Set(["configure", "shutdown", "defer", "refused"]);

/**
 * Every node of the fleet has a final record (configure, shutdown, defer, refused), or its
 * last record is an error from a step whose reply was lost, or `gone`, while the node did leave
 * provisioning mode all the same (an unanswered restart or shutdown), or the fleet says the
 * node never answers (it may have no record at all: it drops discovery replies too).
 */
export function fleetHandled(records: DecisionRecord[] | Map<string, DecisionRecord>, fleet: FleetView, final: Set<string> = FINAL): boolean {
  const m = records instanceof Map ? records : latestRecords(records);
  if (m.size < fleet.identities.length && !fleet.neverAnswers) return false;
  let modes: Map<string, string> | undefined;
  for (const id of fleet.identities) {
    const r = m.get(id);
    if (r && final.has(r.outcome)) continue;
    if (fleet.neverAnswers?.(id)) continue;
    if (!r) return false;
    modes ??= new Map(fleet.report().nodes.map((n) => [n.identity, n.mode]));
    if ((r.outcome === "error" || r.outcome === "gone") && modes.get(id) !== "provisioning") continue;
    return false;
  }
  return true;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface RunSummary {
  nodes: number;
  byOutcome: Record<string, number>;
  provisioned: number;
  seconds: number;
  nodesPerMinute: number;
  latencyMs: { p50: number; p99: number; max: number };
}

/** Summarises the latest record per node; throughput counts configured nodes over wall time. */
export function summarise(records: DecisionRecord[], nodes: number, seconds: number): RunSummary {
  const latest = latestRecords(records);
  const byOutcome: Record<string, number> = {};
  for (const r of latest.values()) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
  const totals = records.filter((r) => r.outcome === "configure").map((r) => r.durations.total ?? 0).sort((a, b) => a - b);
  const provisioned = byOutcome.configure ?? 0;
  return {
    nodes,
    byOutcome,
    provisioned,
    seconds,
    nodesPerMinute: seconds > 0 ? Math.round((provisioned / seconds) * 60) : 0,
    latencyMs: { p50: Math.round(percentile(totals, 50)), p99: Math.round(percentile(totals, 99)), max: Math.round(totals.at(-1) ?? 0) },
  };
}
