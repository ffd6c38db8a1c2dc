import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { onStopSignals } from "../../daemon/stop-signals.js";
import { loadFactsFile, parseFaultSpec, startFleet, type FleetOptions, type FleetReport } from "../../sim/index.js";

interface SimCliOptions {
  broker: string;
  nodes: string;
  token?: string;
  facts?: string;
  seed: string;
  faults?: string;
  report?: string;
  record?: string;
  connections?: string;
  lifecycleFormat: string;
  registration?: string | boolean;
  legacyRegistration?: boolean;
  alive: boolean;
  aliveInterval?: string;
  restartDelay?: string;
  startupRamp?: string;
  jwt?: string;
  protocol: string;
  serverVersion?: string;
  keyPool?: string;
  exitWhenDone?: boolean;
  progress?: boolean;
}

/** after SIGINT/SIGTERM: the fleet's stop takes a drain deadline (2 s) and writing the report */
const FORCE_EXIT_AFTER_MS = 8000;

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw Object.assign(new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`), { exitCode: 2 });
  return n;
}

function protocolFlag(v: string): 1 | 2 {
  if (v !== "1" && v !== "2") throw Object.assign(new Error(`--protocol must be 1 or 2, got ${JSON.stringify(v)}`), { exitCode: 2 });
  return Number(v) as 1 | 2;
}

function summary(r: FleetReport): string {
  const t = r.totals;
  return `${t.nodes} nodes, ${t.inProvisioningMode} in provisioning mode, ${t.provisioned} provisioned, ${t.shutdown} shut down, ${t.dead} dead, ${t.violations} violations`;
}

export function register(program: Command): void {
  program
    .command("sim")
    .description("simulate provisioning-mode Choria servers (go-choria behaviour) on a NATS broker")
    .requiredOption("--broker <url>", "NATS URL(s), comma separated")
    .option("--nodes <n>", "number of simulated servers", "10")
    .option("--token <token>", "provisioning token the servers require")
    .option("--facts <file>", "JSON/YAML facts: one object for every node, or a map identity -> facts")
    .option("--seed <n>", "seed for facts, faults and keys", "1")
    .option("--faults <spec>", "e.g. latency=20-200,drop=0.05,drop_probability=0.5,die_after_inventory=0.01,die_after_gencsr=0.01,bad_csr=0.01,wrong_cn_csr=0.01,come_back_unprovisioned=0.02")
    .option("--report <file>", "write the JSON report here on exit")
    .option("--record <dir>", "write each node's RecordedInventory to <dir>/<identity>.json")
    .option("--connections <n>", "NATS connections to multiplex the fleet over")
    .option("--lifecycle-format <format>", "cloudevent or choria", "cloudevent")
    .option("--registration [intervalMs]", "publish file_content registration data (default every 120000 ms)")
    .option("--legacy-registration", "also publish registration on choria.provisioning_data")
    .option("--alive-interval <ms>", "alive lifecycle events every <ms> while in provisioning mode, the first at random within 29/30 of it (default 1800000, as servers)")
    .option("--no-alive", "send no alive lifecycle events")
    .option("--restart-delay <ms>", "real delay for restart/shutdown instead of Go's splay seconds")
    .option("--startup-ramp <ms>", "spread startup events over this long")
    .option("--jwt <file>", "provisioning.jwt contents the jwt action returns")
    .option("--protocol <version>", "Choria protocol the nodes speak: 1, or 2 (needs --jwt with v2: true)", "1")
    .option("--server-version <version>", "version every node reports")
    .option("--key-pool <n>", "RSA keys shared by the fleet", "64")
    .option("--exit-when-done", "exit once every node has left provisioning mode (provisioned, shut down or dead)")
    .option("--progress", "print progress once a second even when stderr is not a TTY")
    .action(async (opts: SimCliOptions) => {
      if (opts.lifecycleFormat !== "cloudevent" && opts.lifecycleFormat !== "choria") {
        throw Object.assign(new Error("--lifecycle-format must be cloudevent or choria"), { exitCode: 2 });
      }
      const o: FleetOptions = {
        servers: opts.broker,
        nodes: int("nodes", opts.nodes, 1)!,
        token: opts.token,
        seed: int("seed", opts.seed),
        facts: opts.facts ? loadFactsFile(opts.facts) : undefined,
        faults: opts.faults ? parseFaultSpec(opts.faults) : undefined,
        recordDir: opts.record,
        connections: int("connections", opts.connections, 1),
        lifecycleFormat: opts.lifecycleFormat,
        registration: opts.registration === undefined ? false : opts.registration === true ? true : { intervalMs: int("registration", String(opts.registration), 1)! },
        legacyRegistration: opts.legacyRegistration,
        alive: opts.alive === false ? false : opts.aliveInterval === undefined ? true : { intervalMs: int("alive-interval", opts.aliveInterval, 1)! },
        restartDelayMs: int("restart-delay", opts.restartDelay),
        startupRampMs: int("startup-ramp", opts.startupRamp),
        provisioningJwt: opts.jwt ? readFileSync(opts.jwt, "utf8") : undefined,
        protocol: protocolFlag(opts.protocol),
        version: opts.serverVersion,
        keyPoolSize: int("key-pool", opts.keyPool, 1),
      };
      const started = performance.now();
      const fleet = await startFleet(o);
      // handlers go in before the "listening" line: whoever reads it may signal at once
      const stopped = new Promise<void>((resolve) => {
        const onUpdate = (): void => {
          const t = fleet.report().totals;
          if (t.provisioned + t.shutdown + t.dead === t.nodes) finish();
        };
        const finish = (): void => {
          fleet.events.off("update", onUpdate);
          resolve();
        };
        // fleet.stop() is bounded by closeNats' drain deadline; the backstop is for anything else
        onStopSignals("sim", finish, FORCE_EXIT_AFTER_MS);
        if (opts.exitWhenDone) {
          fleet.events.on("update", onUpdate);
          onUpdate();
        }
      });
      const progress = opts.progress || process.stderr.isTTY ? setInterval(() => process.stderr.write(`sim: ${summary(fleet.report())}\n`), 1000) : undefined;
      process.stderr.write(`sim: ${o.nodes} nodes listening on ${o.servers} after ${Math.round(performance.now() - started)} ms (key pool ${fleet.keyPool.size}, ${fleet.keyPool.generated} generated)\n`);
      await stopped;
      if (progress) clearInterval(progress);
      const report = fleet.report();
      await fleet.stop();
      if (opts.report) writeFileSync(opts.report, JSON.stringify(report, null, 2) + "\n");
      process.stderr.write(`sim: ${summary(report)}\n`);
    });
}
