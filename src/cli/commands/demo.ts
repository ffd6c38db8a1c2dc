/**
 * `choria-provisioner demo`: the whole system on one machine. A local nats-server, a built-in
 * CA in a temp dir, a simulated fleet and the daemon with the shipped policies, a live
 * progress line, a summary, and every process it started stopped again.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { initBuiltinCa } from "../../ca/index.js";
import { resolveSettings } from "../../config/index.js";
import { parseFaultSpec, startFleet, type Fleet } from "../../sim/index.js";
import { startNatsServer, type LocalNatsServer } from "../../transport/index.js";
import type { DecisionRecord } from "../../types/index.js";
import { startDaemon, type DaemonHandle } from "../../daemon/start.js";
import { fleetHandled, latestRecords, summarise } from "../../provision/fleet-progress.js";
import { onStopSignals, signalExitCode } from "../../daemon/stop-signals.js";
import { numberArg } from "../args.js";

interface DemoFlags {
  nodes: number;
  workers: number;
  faults?: string;
  policies?: string;
  rules?: string;
  timeout: number;
  seed: number;
  progress: boolean;
}

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** nodes in flight when the demo stops get this long; the demo's whole stop, this long at most */
const DRAIN_MS = 2000;
const FORCE_EXIT_AFTER_MS = 8000;


function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return "█".repeat(full) + "░".repeat(width - full);
}

export function register(program: Command): void {
  program
    .command("demo")
    .description("run everything locally: nats-server, a simulated fleet, the CA and the provisioner with the shipped policies")
    .option("--nodes <n>", "simulated nodes", numberArg({ min: 1 }), 2000)
    .option("--workers <n>", "provisioner workers", numberArg({ min: 1 }), 100)
    .option("--faults <spec>", "simulator faults, e.g. drop=0.02,bad_csr=0.01 (see `sim --help`)")
    .option("--policies <dir>", "policy directory", join(REPO, "policies"))
    .option("--rules <dir>", "rule set directory", join(REPO, "rules"))
    .option("--seed <n>", "fleet seed", numberArg(), 1)
    .option("--timeout <seconds>", "give up after this long", numberArg({ min: 1 }), 600)
    .option("--no-progress", "no live progress line")
    .action(async (f: DemoFlags) => {
      const { nodes, workers } = f;
      const timeoutMs = f.timeout * 1000;
      const faults = f.faults ? parseFaultSpec(f.faults) : undefined;
      const out = (s: string) => process.stdout.write(s + "\n");
      const work = mkdtempSync(join(tmpdir(), "choria-provisioner-demo-"));
      let srv: LocalNatsServer | undefined;
      let fleet: Fleet | undefined;
      let daemon: DaemonHandle | undefined;
      let ticker: NodeJS.Timeout | undefined;
      const cleanup = async () => {
        if (ticker) clearInterval(ticker);
        await daemon?.stop(DRAIN_MS).catch(() => undefined);
        await fleet?.stop().catch(() => undefined);
        await srv?.stop().catch(() => undefined);
      };
      const offSignals = onStopSignals(
        "demo",
        (signal) => {
          process.stderr.write("\ninterrupted: stopping everything the demo started\n");
          void cleanup().then(() => process.exit(signalExitCode(signal)));
        },
        FORCE_EXIT_AFTER_MS,
      );
      try {
        out(`choria-provisioner demo: ${nodes} simulated nodes, policies from ${resolve(f.policies!)}`);
        try {
          srv = await startNatsServer();
        } catch (e) {
          throw Object.assign(new Error(`${(e as Error).message}\nthe demo needs Debian's nats-server: apt-get install nats-server`), { exitCode: 2 });
        }
        out(`  nats-server      ${srv.url} (pid ${srv.pid})`);
        const caDir = join(work, "ca");
        await initBuiltinCa(caDir, { key: "ecdsa" });
        out(`  built-in CA      ${caDir}`);
        fleet = await startFleet({ servers: srv.url, nodes, seed: f.seed, restartDelayMs: 200, faults, recordDir: undefined });
        out(`  simulated fleet  ${nodes} nodes in provisioning mode`);
        const settings = resolveSettings({
          broker: srv.url,
          identity: "provisioner.demo.example.net",
          policies: f.policies,
          rules: f.rules,
          workers,
          ca: { type: "builtin", dir: caDir },
          audit: { file: join(work, "decisions.jsonl") },
          record: join(work, "inventories"),
          discovery: { interval: "10s" },
          hold_after_restart: "5s",
          watch: false,
          log: { level: "warn", file: join(work, "provisioner.log") },
        });
        const records: DecisionRecord[] = [];
        const discovered = new Set<string>();
        let firstPassS = 0;
        const started = Date.now();
        // the daemon's own logger, redaction included, from log.level/log.file above
        daemon = await startDaemon(settings);
        const ref = daemon.policies.current().ref;
        out(`  provisioner      policy ${ref.name} ${ref.version} (${ref.hash.slice(0, 19)}…), admin ${daemon.admin.url}`);
        out("");
        const d = daemon;
        const fl = fleet;
        d.provisioner.on("queued", (id) => discovered.add(id));
        const tty = process.stderr.isTTY && f.progress;
        const render = (final = false) => {
          const latest = latestRecords(records);
          const c: Record<string, number> = {};
          for (const r of latest.values()) c[r.outcome] = (c[r.outcome] ?? 0) + 1;
          const s = d.provisioner.status();
          const secs = (Date.now() - started) / 1000;
          const rate = secs > 0 ? Math.round(((c.configure ?? 0) / secs) * 60) : 0;
          const line = `${bar(latest.size / nodes)} discovered ${String(discovered.size).padStart(String(nodes).length)}/${nodes} | decided ${String(latest.size).padStart(String(nodes).length)} | in flight ${String(s.busyWorkers).padStart(3)} | provisioned ${c.configure ?? 0} | deferred ${c.defer ?? 0} | shut down ${c.shutdown ?? 0} | refused ${c.refused ?? 0} | failed ${c.error ?? 0} | ${rate.toLocaleString("en")} nodes/min`;
          if (tty) process.stderr.write(`\r\x1b[2K${line}${final ? "\n" : ""}`);
          else if (final || Math.round(secs) % 5 === 0) process.stderr.write(line + "\n");
        };
        ticker = setInterval(() => render(), tty ? 250 : 1000);
        // nodes with a drop fault of probability 1 never answer, not even discovery: settled from the start
        const unreachable = fl.identities.filter((id) => fl.neverAnswers(id)).length;
        const reachable = nodes - unreachable;
        const done = new Promise<boolean>((resolveDone) => {
          const timer = setTimeout(() => resolveDone(false), timeoutMs);
          let latest = new Map<string, DecisionRecord>();
          d.provisioner.on("record", (r) => {
            records.push(r);
            latest.set(r.identity, r);
            if (!firstPassS && latest.size >= reachable) firstPassS = (Date.now() - started) / 1000;
            if (latest.size >= reachable && fleetHandled(latest, fl)) {
              clearTimeout(timer);
              resolveDone(true);
            }
          });
          void latest;
          latest = latestRecords(records);
        });
        const complete = await done;
        const seconds = (Date.now() - started) / 1000;
        clearInterval(ticker);
        ticker = undefined;
        render(true);
        const sum = summarise(records, nodes, seconds);
        const report = fl.report();
        writeFileSync(join(work, "fleet-report.json"), JSON.stringify(report, null, 2) + "\n");
        writeFileSync(join(work, "summary.json"), JSON.stringify({ ...sum, policy: ref, violations: report.totals.violations, configuredMoreThanOnce: report.totals.configuredMoreThanOnce }, null, 2) + "\n");
        out("");
        out(complete ? `done in ${seconds.toFixed(1)} s` : `stopped after ${seconds.toFixed(1)} s (timeout); not every node settled`);
        const rows: Array<[string, string]> = [
          ["nodes", String(nodes)],
          ["discovered", String(discovered.size)],
          ["provisioned (configured + restarted)", String(sum.byOutcome.configure ?? 0)],
          ["deferred by policy", String(sum.byOutcome.defer ?? 0)],
          ["shut down by policy", String(sum.byOutcome.shutdown ?? 0)],
          ["CSR refused", String(sum.byOutcome.refused ?? 0)],
          ["failed (found again next cycle)", String(sum.byOutcome.error ?? 0)],
          ["never answered (drop fault)", String(unreachable)],
          ["every node decided once after", firstPassS ? `${firstPassS.toFixed(1)} s (${Math.round((reachable / firstPassS) * 60).toLocaleString("en")} nodes/min)` : "-"],
          ["provisioned per minute overall", `${sum.nodesPerMinute.toLocaleString("en")} (includes upgraded nodes coming back after their hold)`],
          ["per-node latency p50 / p99", `${sum.latencyMs.p50} ms / ${sum.latencyMs.p99} ms`],
          ["nodes configured more than once", String(report.totals.configuredMoreThanOnce)],
          ["protocol violations seen by the nodes", String(report.totals.violations)],
          ["policy", `${ref.name} ${ref.version}`],
        ];
        const w = Math.max(...rows.map((r) => r[0].length));
        for (const [k, v] of rows) out(`  ${k.padEnd(w)}  ${v}`);
        out("");
        out(`  audit log        ${join(work, "decisions.jsonl")}`);
        out(`  fleet report     ${join(work, "fleet-report.json")}`);
        out(`  inventories      ${join(work, "inventories")}  (try: choria-provisioner policy eval --inventory <file> --explain)`);
        out(`  provisioner log  ${join(work, "provisioner.log")}`);
        await cleanup();
        offSignals();
        if (!complete) process.exitCode = 1;
      } catch (e) {
        await cleanup();
        throw e;
      }
    });
}
