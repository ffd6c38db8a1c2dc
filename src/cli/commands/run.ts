import type { Command } from "commander";
import { ConfigError, loadConfigFile, resolveSettings, type ConfigFile } from "../../config/index.js";
import { startDaemon } from "../../daemon/start.js";
import { durationArg, numberArg } from "../args.js";
import { createLogger } from "../../daemon/logger.js";
import { onStopSignals } from "../../daemon/stop-signals.js";

/** in-flight nodes get this long to finish after SIGINT/SIGTERM (docs/operations.md) */
const DRAIN_MS = 30_000;
/** and the rest of the stop (HA hand-over, closing the connections, each with its own deadline) this long */
const CLOSE_MS = 10_000;

interface RunFlags {
  config?: string;
  broker?: string;
  policies?: string;
  rules?: string;
  policy?: string;
  caDir?: string;
  workers?: number;
  site?: string;
  identity?: string;
  admin?: string;
  audit?: string;
  record?: string;
  logLevel?: string;
  pki: boolean;
  discoveryInterval?: number;
}

/** Flags override the file; the merged document is what the schema describes. */
export function applyFlags(cfg: ConfigFile, f: RunFlags): ConfigFile {
  const c: ConfigFile = { ...cfg };
  if (f.broker) c.broker = f.broker;
  if (f.policies) c.policies = f.policies;
  if (f.rules) c.rules = f.rules;
  if (f.policy) c.policy = f.policy;
  if (f.caDir) c.ca = { ...c.ca, type: "builtin", dir: f.caDir };
  if (f.workers !== undefined) c.workers = f.workers;
  if (f.site) c.site = f.site;
  if (f.identity) c.identity = f.identity;
  if (f.admin) c.admin = { ...c.admin, listen: f.admin };
  if (f.audit) c.audit = { ...c.audit, file: f.audit };
  if (f.record) c.record = f.record;
  if (f.logLevel) c.log = { ...c.log, level: f.logLevel };
  if (!f.pki) c.features = { ...c.features, pki: false };
  if (f.discoveryInterval !== undefined) c.discovery = { ...c.discovery, interval: f.discoveryInterval };
  return c;
}

export function register(program: Command): void {
  program
    .command("run")
    .description("run the provisioner daemon")
    .option("-c, --config <file>", "YAML configuration file (schemas/provisioner-config.json)")
    .option("--broker <url>", "provisioning broker URL(s), comma separated")
    .option("--policies <dir>", "policy directory")
    .option("--rules <dir>", "rule set directory (default: rules/ beside the policies)")
    .option("--policy <name>", "policy to run when the directory holds several")
    .option("--ca-dir <dir>", "built-in CA directory (made by `ca init`)")
    .option("--workers <n>", "nodes provisioned concurrently", numberArg({ min: 1 }))
    .option("--site <name>", "site label for metrics")
    .option("--identity <name>", "provisioner identity")
    .option("--admin <host:port>", "admin HTTP listen address (default 127.0.0.1:0)")
    .option("--audit <file>", "decision audit log (JSON lines)")
    .option("--record <dir>", "record every inventory seen as a policy test fixture")
    .option("--log-level <level>", "trace|debug|info|warn|error")
    .option("--discovery-interval <duration>", "discovery interval, e.g. 60s", durationArg)
    .option("--no-pki", "do not request CSRs or sign certificates")
    .addHelpText(
      "after",
      [
        "",
        "Secrets come from the environment: CHORIA_PROVISIONER_TOKEN (provisioning token), CHORIA_PROVISIONER_ADMIN_TOKEN (pause/resume and the admin actions below), CHORIA_PROVISIONER_BROKER_PASSWORD.",
        "SIGHUP reloads the policies; SIGINT/SIGTERM drain in-flight nodes and stop.",
        "",
        "Arrival (config `arrival:`, off when absent): every node restarted is awaited at home, its startup event",
        "(component server) on the home brokers in `arrival.homes` (each for some broker sets or for all; a broker set",
        "no home covers is watched on its own brokers) with the TLS credentials given there; `arrived` or, after",
        "`arrival.deadline` (default 2m), `lost`, as a follow-up audit record. With it, a new policy version runs as a",
        "canary (`rollout:` canary 20, min_arrivals, max_lost 10%, on_failure revert|pause, trust_initial), and a broker",
        "set losing nodes is deferred until POST /broker-sets/<name>/clear. See docs/operations.md.",
      ].join("\n"),
    )
    .action(async (f: RunFlags) => {
      let settings;
      try {
        const cfg: ConfigFile = applyFlags(f.config ? loadConfigFile(f.config) : {}, f);
        // validated again: a flag can set what the file could not (--log-level nonsense)
        settings = resolveSettings(cfg, process.env, f.config ? `${f.config} with the command-line flags` : "the command-line flags");
      } catch (e) {
        if (e instanceof ConfigError) throw Object.assign(new Error(`invalid configuration:\n${e.message}`), { exitCode: 2 });
        throw e;
      }
      const log = createLogger({ level: settings.logLevel, file: settings.logFile });
      process.on("unhandledRejection", (r) => log.error({ err: String((r as Error)?.stack ?? r) }, "unhandled rejection"));
      const d = await startDaemon(settings, { log });
      process.on("SIGHUP", () => {
        log.info("SIGHUP: reloading policies");
        void d.reload();
      });
      onStopSignals(
        "choria-provisioner",
        (signal) => {
          log.info({ signal }, "stopping: draining in-flight nodes");
          void d.stop(DRAIN_MS).then(
            () => process.exit(0),
            (e: Error) => {
              log.error({ err: e.message }, "stopping failed");
              process.exit(1);
            },
          );
        },
        DRAIN_MS + CLOSE_MS,
      );
      // last: whoever waits for this line (a supervisor, a test) may signal at once, and a
      // SIGTERM before the handlers above would end the process without its graceful stop
      process.stderr.write(`choria-provisioner: running as ${settings.identity}, admin ${d.admin.url}\n`);
    });
}
