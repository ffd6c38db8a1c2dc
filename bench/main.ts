/**
 * `npm run bench`: the end-to-end benchmark's own entry point (the product's CLI does not carry
 * it, so cli/ and bench/ import nothing of each other).
 */
import { Command } from "commander";
import { onStopSignals, signalExitCode } from "../src/daemon/stop-signals.js";
import { runBench } from "./run.js";
import { useShippedCode } from "./children.js";

interface BenchCliOptions {
  nodes?: string;
  quick?: boolean;
  helperNodes?: string;
  waiting?: string;
  arrivalNodes?: string;
  phantomPairs?: string;
  boundPairs?: string;
  arrivalPairs?: string;
  profile?: boolean;
  realServers?: string;
  bounds: boolean;
  out?: string;
}

function ints(name: string, v: string): number[] {
  const list = v.split(",").map((s) => Number(s.trim().replace(/_/g, "")));
  if (list.some((n) => !Number.isInteger(n) || n < 0)) throw Object.assign(new Error(`--${name} takes comma-separated non-negative integers, got ${JSON.stringify(v)}`), { exitCode: 2 });
  return list;
}

const program = new Command();
program
  .name("bench")
  .description(
    "benchmark provisioning end to end (local nats-server, simulated fleet, the daemon with PKI on) against the machine's bounds; writes bench/results/*.json, summary.json and provisioned-over-time.svg",
  )
  .option("--nodes <list>", "fleet sizes for the end-to-end runs (default 10000,50000; --quick 2000)")
  .option("--quick", "small and short: a 2,000-node run, 1 s bounds, 20,000 waiting; results in bench/results/quick/")
  .option("--helper-nodes <n>", "fleet size decided by the legacy exec helper, 0 to skip (default 5000; --quick 500)")
  .option("--waiting <n>", "nodes queued in a paused daemon for the RSS measurement, 0 to skip (default 100000; --quick 20000)")
  .option("--arrival-nodes <n>", "fleet size for arrival tracking off against on, 0 to skip (default 10000; --quick 2000)")
  .option("--arrival-pairs <n>", "alternating pairs of the arrival comparison, tracking off and on (default 3; --quick 1)")
  .option("--phantom-pairs <n>", "alternating pairs of a 500-node fleet without and with 2,000 phantom announcements, 0 to skip (default 5; --quick 3)")
  .option("--bound-pairs <n>", "alternating rounds of the daemon, its per-node flow alone and the essential-work provisioner on a 10,000-node fleet for daemon_vs_essential, 0 to skip (default 5; --quick 2)")
  .option("--profile", "CPU-profile the provisioner during the largest run (node --cpu-prof) and print the top self-time functions")
  .option("--real-servers <n>", "real go-choria servers provisioned by ours and by the reference (bench/real-servers.ts), 0 to skip (default 50; --quick 10)")
  .option("--no-bounds", "skip the machine-bound measurements")
  .option("--out <dir>", "results directory")
  .action(async (o: BenchCliOptions) => {
    // the runs cannot be resumed: stop at once; the nats-servers and bench children die with this process
    onStopSignals(
      "bench",
      (signal) => {
        process.stderr.write(`bench: ${signal}: stopping its nats-server and child processes\n`);
        process.exit(signalExitCode(signal));
      },
      0,
    );
    const quick = !!o.quick;
    useShippedCode();
    const { allMet } = await runBench({
      nodes: o.nodes ? ints("nodes", o.nodes).filter((n) => n > 0) : quick ? [2000] : [10_000, 50_000],
      quick,
      helperNodes: o.helperNodes !== undefined ? ints("helper-nodes", o.helperNodes)[0] : quick ? 500 : 5000,
      waiting: o.waiting !== undefined ? ints("waiting", o.waiting)[0] : quick ? 20_000 : 100_000,
      arrivalNodes: o.arrivalNodes !== undefined ? ints("arrival-nodes", o.arrivalNodes)[0] : quick ? 2000 : 10_000,
      phantomPairs: o.phantomPairs !== undefined ? ints("phantom-pairs", o.phantomPairs)[0] : quick ? 3 : 5,
      arrivalPairs: o.arrivalPairs !== undefined ? Math.max(1, ints("arrival-pairs", o.arrivalPairs)[0]!) : quick ? 1 : 3,
      boundPairs: o.boundPairs !== undefined ? ints("bound-pairs", o.boundPairs)[0] : quick ? 2 : 5,
      profile: !!o.profile,
      realServers: o.realServers !== undefined ? ints("real-servers", o.realServers)[0] : quick ? 10 : 50,
      skipBounds: !o.bounds,
      outDir: o.out,
    });
    // goals are benchmarks, not tests: report, do not fail
    if (!allMet) process.stderr.write("some goals are not met (see the table above)\n");
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error & { exitCode?: number };
  process.stderr.write(`bench: ${e?.message ?? String(err)}\n`);
  process.exit(typeof e?.exitCode === "number" ? e.exitCode : 2);
});
