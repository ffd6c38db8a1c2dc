/** Starts the real daemon assembly (daemon/start.ts) with test-friendly timings. */
import { join } from "node:path";
import pino from "pino";
import { resolveSettings, type ConfigFile } from "../../src/config/index.js";
import { startDaemon, type DaemonHandle } from "../../src/daemon/start.js";
import type { FlowOptions } from "../../src/provision/flow.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { Waiters } from "./waiters.js";

export const REPO = new URL("../../", import.meta.url).pathname;

export interface TestDaemon extends DaemonHandle {
  records: DecisionRecord[];
  /** resolves once `pred` holds over the records seen so far (event driven) */
  waitFor(pred: (records: DecisionRecord[]) => boolean, timeoutMs: number, what?: string): Promise<DecisionRecord[]>;
}

export async function startTestDaemon(broker: string, cfg: ConfigFile = {}, flow: Partial<FlowOptions> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestDaemon> {
  const settings = resolveSettings(
    {
      broker,
      identity: "provisioner.test",
      policies: join(REPO, "policies"),
      workers: 50,
      discovery: { interval: "2s", timeout: "1500ms", quiet: "300ms", at_start: true },
      hold_after_restart: "3s",
      rpc: { inventory_timeout: "3s", provision_timeout: "5s", max_timeouts: 2, backoff_max: "200ms" },
      watch: false,
      ...cfg,
    },
    env,
  );
  const d = await startDaemon(settings, { log: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), flow: { backoff: { baseMs: 20, maxMs: 200 }, ...flow } });
  const records: DecisionRecord[] = [];
  const waiters = new Waiters();
  d.provisioner.on("record", (r) => {
    records.push(r);
    waiters.notify();
  });
  return Object.assign(d, {
    records,
    waitFor(pred: (r: DecisionRecord[]) => boolean, timeoutMs: number, what = "condition") {
      return waiters.until(
        () => pred(records),
        () => records,
        timeoutMs,
        () => {
          const by: Record<string, number> = {};
          for (const r of records) by[r.outcome] = (by[r.outcome] ?? 0) + 1;
          const errors = records.filter((r) => r.outcome === "error").slice(-5).map((r) => `${r.identity}: ${r.reason}`);
          return new Error(`timed out after ${timeoutMs}ms waiting for ${what}; records so far: ${JSON.stringify(by)}; last errors: ${errors.join("; ")}`);
        },
      );
    },
  });
}

export { latestRecords, fleetHandled } from "../../src/provision/fleet-progress.js";
