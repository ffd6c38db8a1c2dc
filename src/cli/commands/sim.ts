import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { onStopSignals } from "../../daemon/stop-signals.js";
import { numberArg } from "../args.js";
import { loadFactsFile, parseFaultSpec, startFleet, type FleetOptions, type FleetReport } from "../../sim/index.js";

interface SimCliOptions {
  broker: string;
  nodes: number;
  token?: string;
  facts?: string;
  seed: number;
  faults?: string;
  report?: string;
  record?: string;
  connections?: number;
  lifecycleFormat: string;
  registration?: number | boolean;
  legacyRegistration?: boolean;
  alive: boolean;
  aliveInterval?: number;
  restartDelay?: number;
  startupRamp?: number;
  jwt?: string;
  protocol: 1 | 2;
  serverVersion?: string;
  keyPool?: number;
  exitWhenDone?: boolean;
  progress?: boolean;
}

/** after SIGINT/SIGTERM: the fleet's stop takes a drain deadline (2 s) and writing the report */
const FORCE_EXIT_AFTER_MS = 8000;


function summary(r: FleetReport): string {
  const t = r.totals;
  return `${t.nodes} nodes, ${t.inProvisioningMode} in provisioning mode, ${t.provisioned} provisioned, ${t.shutdown} shut down, ${t.dead} dead, ${t.violations} violations`;
}

export function register(program: Command): void {
  program
    .command("sim")
    .description("simulate provisioning-mode Choria servers (go-choria behaviour) on a NATS broker")
    .requiredOption("--broker <url>", "NATS URL(s), comma separated")
    .option("--nodes <n>", "number of simulated servers", numberArg({ min: 1 }), 10)
    .option("--token <token>", "provisioning token the servers require")
    .option("--facts <file>", "JSON/YAML facts: one object for every node, or a map identity -> facts")
    .option("--seed <n>", "seed for facts, faults and keys", numberArg(), 1)
    .option("--faults <spec>", "e.g. latency=20-200,drop=0.05,drop_probability=0.5,die_after_inventory=0.01,die_after_gencsr=0.01,bad_csr=0.01,wrong_cn_csr=0.01,come_back_unprovisioned=0.02")
    .option("--report <file>", "write the JSON report here on exit")
    .option("--record <dir>", "write each node's RecordedInventory to <dir>/<identity>.json")
    .option("--connections <n>", "NATS connections to multiplex the fleet over", numberArg({ min: 1 }))
    .option("--lifecycle-format <format>", "cloudevent or choria", "cloudevent")
    .option("--registration [intervalMs]", "publish file_content registration data (default every 120000 ms)", numberArg({ min: 1 }))
    .option("--legacy-registration", "also publish registration on choria.provisioning_data")
    .option("--alive-interval <ms>", "alive lifecycle events every <ms> while in provisioning mode, the first at random within 29/30 of it (default 1800000, as servers)", numberArg({ min: 1 }))
    .option("--no-alive", "send no alive lifecycle events")
    .option("--restart-delay <ms>", "real delay for restart/shutdown instead of Go's splay seconds", numberArg())
    .option("--startup-ramp <ms>", "spread startup events over this long", numberArg())
    .option("--jwt <file>", "provisioning.jwt contents the jwt action returns")
    .option("--protocol <version>", "Choria protocol the nodes speak: 1, or 2 (needs --jwt with v2: true)", numberArg({ min: 1, max: 2 }) as (v: string) => 1 | 2, 1)
    .option("--server-version <version>", "version every node reports")
    .option("--key-pool <n>", "RSA keys shared by the fleet", numberArg({ min: 1 }), 64)
    .option("--exit-when-done", "exit once every node has left provisioning mode (provisioned, shut down or dead)")
    .option("--progress", "print progress once a second even when stderr is not a TTY")
    .action(async (opts: SimCliOptions) => {
      if (opts.lifecycleFormat !== "cloudevent" && opts.lifecycleFormat !== "choria") {
        throw Object.assign(new Error("--lifecycle-format must be cloudevent or choria"), { exitCode: 2 });
      }
      const o: FleetOptions = {
        servers: opts.broker,
        nodes: opts.nodes,
        token: opts.token,
        seed: opts.seed,
        facts: opts.facts ? loadFactsFile(opts.facts) : undefined,
        faults: opts.faults ? parseFaultSpec(opts.faults) : undefined,
        recordDir: opts.record,
        connections: opts.connections,
        lifecycleFormat: opts.lifecycleFormat,
        registration: typeof opts.registration === "number" ? { intervalMs: opts.registration } : opts.registration === true,
        legacyRegistration: opts.legacyRegistration,
        alive: opts.alive === false ? false : opts.aliveInterval === undefined ? true : { intervalMs: opts.aliveInterval },
        restartDelayMs: opts.restartDelay,
        startupRampMs: opts.startupRamp,
        provisioningJwt: opts.jwt ? readFileSync(opts.jwt, "utf8") : undefined,
        protocol: opts.protocol,
        version: opts.serverVersion,
        keyPoolSize: opts.keyPool,
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
