/**
 * Small shared harness for `npm run bench`: every benchmark returns a BenchResult and
 * the harness writes it as JSON to bench/results/<name>.json and prints a table row.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { benchCode } from "./children.js";

export interface BenchResult {
  name: string;
  /** goal the issue sets, for the report, e.g. { metric: "evals_per_sec", min: 10000 } */
  goal?: { metric: string; min?: number; max?: number };
  metrics: Record<string, number>;
  notes?: string[];
}

/** the median; of an even count, the mean of the two middle values */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export function machine(): Record<string, unknown> {
  return { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), code: benchCode() };
}

export function writeResult(r: BenchResult, dir = "bench/results"): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${r.name}.json`);
  const goalMet = r.goal ? checkGoal(r) : undefined;
  writeFileSync(file, JSON.stringify({ ...r, goalMet, machine: machine(), at: new Date().toISOString() }, null, 2) + "\n");
  return file;
}

export function checkGoal(r: BenchResult): boolean | undefined {
  if (!r.goal) return undefined;
  const v = r.metrics[r.goal.metric];
  if (v === undefined) return undefined;
  if (r.goal.min !== undefined && v < r.goal.min) return false;
  if (r.goal.max !== undefined && v > r.goal.max) return false;
  return true;
}

export function printResult(r: BenchResult): void {
  const g = checkGoal(r);
  const goal = r.goal ? ` goal ${r.goal.metric} ${r.goal.min !== undefined ? ">= " + r.goal.min : "<= " + r.goal.max}: ${g ? "met" : "NOT met"}` : "";
  const metrics = Object.entries(r.metrics)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`)
    .join(" ");
  process.stdout.write(`${r.name.padEnd(28)} ${metrics}${goal}\n`);
}
