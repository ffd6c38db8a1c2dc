/**
 * The audit log against the fleet's own report. Whole daemons run in their own processes
 * (test/ha/daemon-child.ts) with an audit file each, over a real nats-server and a simulated
 * fleet; a fault is applied mid-run, and once the fleet has settled and every daemon is idle the
 * audit files are read back and compared with what the fleet says happened to each node.
 */
import { readFileSync } from "node:fs";
import { startFleet, type Fleet, type NodeReport } from "../../src/sim/index.js";
import type { LocalNatsServer } from "../../src/transport/index.js";
import { DaemonGroup, type DaemonChild } from "../ha/helpers.js";

/** one line of an audit file, whatever its kind (decision record, configure line, follow-up) */
export interface AuditLine {
  kind?: string;
  identity: string;
  time: string;
  outcome?: string;
  reason?: string;
}

export function readAudit(files: string[]): AuditLine[] {
  const out: AuditLine[] = [];
  for (const f of files) {
    let text = "";
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue; // a daemon that never wrote a line
    }
    for (const line of text.split("\n")) if (line.trim()) out.push(JSON.parse(line) as AuditLine);
  }
  return out.sort((a, b) => a.time.localeCompare(b.time));
}

export interface Comparison {
  /** configured by the fleet's account, without a line in the audit */
  missing: string[];
  /** the fleet received more configures than the audit shows being sent: "id fleet>audit" */
  unseenConfigures: string[];
  /** nodes the fleet received configure more than once, and how many of them the audit shows as such */
  doubles: { fleet: number; visible: number };
  /** `error` records of flows that began after the node had accepted its restart (it was leaving provisioning mode) */
  falseErrors: string[];
  /** nodes that ended as servers whose latest decision record is an error */
  endedAsError: string[];
  /** `gone` records of flows that began after the node had accepted its restart: what the false errors became */
  goneAfterRestart: number;
}

/**
 * `restartedAt`: when each node first accepted a restart (its reply left the node), from the
 * fleet's events. A flow that starts after that talks to a node on its way out.
 */
export function compare(lines: AuditLine[], nodes: NodeReport[], restartedAt: Map<string, number>): Comparison {
  const by = new Map<string, AuditLine[]>();
  for (const l of lines) by.set(l.identity, [...(by.get(l.identity) ?? []), l]);
  const c: Comparison = { missing: [], unseenConfigures: [], doubles: { fleet: 0, visible: 0 }, falseErrors: [], endedAsError: [], goneAfterRestart: 0 };
  for (const n of nodes) {
    const mine = by.get(n.identity) ?? [];
    const sent = mine.filter((l) => l.kind === "configuring").length;
    if (n.configureCount > 0 && mine.length === 0) c.missing.push(n.identity);
    if (n.configureCount > sent) c.unseenConfigures.push(`${n.identity} ${n.configureCount}>${sent}`);
    if (n.configureCount > 1) {
      c.doubles.fleet++;
      if (sent >= n.configureCount) c.doubles.visible++;
    }
    const records = mine.filter((l) => l.kind === undefined && l.outcome !== undefined);
    const restarted = restartedAt.get(n.identity);
    for (const r of records) {
      if (restarted === undefined || Date.parse(r.time) <= restarted) continue;
      if (r.outcome === "error") c.falseErrors.push(`${n.identity}: ${r.reason}`);
      if (r.outcome === "gone") c.goneAfterRestart++;
    }
    if (n.mode === "server" && records.at(-1)?.outcome === "error") c.endedAsError.push(`${n.identity}: ${records.at(-1)!.reason}`);
  }
  return c;
}

export interface AuditRun {
  fleet: Fleet;
  group: DaemonGroup;
  /** first restart reply per node, wall-clock ms */
  restartedAt: Map<string, number>;
  /** resolves once every node left provisioning mode (or was last deferred) and every live daemon is idle */
  settled(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export const TOKEN = "s3cret";
const FINAL = new Set(["server", "shutdown", "dead"]);

/**
 * The fleet lingers 4 s between accepting a restart and leaving (go-choria's splay), so a daemon
 * that takes over finds nodes its predecessor restarted still answering discovery and rpcutil,
 * while choria_provision is silent; shorter than the test daemons' 5 s provisioning timeout.
 */
export async function startAuditRun(srv: LocalNatsServer, nodes: number, seed: number): Promise<AuditRun> {
  const group = new DaemonGroup();
  const fleet = await startFleet({ servers: srv.url, nodes, seed, restartDelayMs: 4000, token: TOKEN, upgradable: false, faults: { latency: 1, latencyMs: [10, 40] } });
  const restartedAt = new Map<string, number>();
  fleet.events.on("reply", (id: string, rpc: string) => {
    if (rpc === "choria_provision#restart" && !restartedAt.has(id)) restartedAt.set(id, Date.now());
  });
  const live = (): DaemonChild[] => group.members.filter((m) => m.role !== "dead");
  const idle = async (): Promise<boolean> => {
    for (const m of live()) {
      const { admin } = await m.ready;
      const s = (await (await fetch(`${admin}/status`)).json()) as { queue: { queued: number; busy: number; retrying: number } };
      if (s.queue.queued + s.queue.busy + s.queue.retrying > 0) return false;
    }
    return true;
  };
  return {
    fleet,
    group,
    restartedAt,
    async settled(timeoutMs) {
      const latest = (id: string): string | undefined => group.outcomes(id).at(-1);
      const done = (): boolean => fleet.report().nodes.every((n) => FINAL.has(n.mode) || latest(n.identity) === "defer");
      await new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!done()) return;
          fleet.events.off("update", check);
          resolve();
        };
        fleet.events.on("update", check);
        group.waitFor(done, timeoutMs, "every node settled").catch((e: Error) => {
          fleet.events.off("update", check);
          reject(new Error(`${e.message}; fleet: ${JSON.stringify(fleet.report().totals)}`));
        });
        check();
      });
      // flows still running (a successor asking a node that is on its way out) end in records of
      // their own; the daemons expose that only in /status, so it is read until they are idle
      const deadline = Date.now() + timeoutMs;
      while (!(await idle())) {
        if (Date.now() > deadline) throw new Error("daemons still busy after the fleet settled");
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      await group.stopAll();
      await fleet.stop();
    },
  };
}

/** the daemons' settings: an audit file of their own, the given HA mode */
export function daemonConfig(caDir: string, auditFile: string, extra: object = {}): object {
  return { workers: 8, ca: { dir: caDir, workers: 1 }, audit: { file: auditFile }, ...extra };
}
