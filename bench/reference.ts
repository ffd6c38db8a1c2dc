/**
 * The real reference provisioner (choria-io/provisioner v0.16.0) against the same simulated
 * fleet as our daemon, on a nats-server of its own, with three helpers:
 *
 *   python-cfssl  bench/legacy-helper.py under the system python3, the seed helper's decision
 *                 as operators write helpers, signing each CSR through the cfssl API of a local
 *                 real `cfssl serve` (not the `cfssl sign` command)
 *   fast          bench/fast-helper (Go, built here with the local toolchain), signing locally
 *   fixed         bench/legacy-helper.sh, a fixed configuration and no signing: the engine's ceiling
 *
 * The binary is named by CHORIA_REFERENCE_PROVISIONER; nothing here builds or fetches it. It runs
 * with `choria_insecure` (plain TCP, unsigned v1 requests, as the fleet speaks), features.pki,
 * interval 1h and its log at info to a file. Its workers default to NumCPU; a sweep on a smaller
 * fleet finds its best count. Nodes are timed from the fleet's side (fleet-child.ts `track`):
 * first directed request to the restart reply, and the clock runs from the fleet's start, as for
 * our e2e runs.
 *
 * Alone: CHORIA_REFERENCE_PROVISIONER=/path/provisioner node --import tsx bench/reference.ts --nodes 2000
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, homedir, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { initBuiltinCa, CA_CERT_FILE, CA_KEY_FILE } from "../src/ca/index.js";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../src/protocol/index.js";
import { onStopSignals, signalExitCode } from "../src/daemon/stop-signals.js";
import { connectNats, killOnExit, startNatsServer } from "../src/transport/index.js";
import { startCfssl, type CfsslServer } from "../test/ca/cfssl-server.js";
import { benchFile, procCpuSeconds, procPeakRssMiB, spawnChild } from "./children.js";
import { benchFleet, REPO, runE2e, TOKEN, type E2eResult } from "./e2e.js";
import { machine, writeResult, printResult, type BenchResult } from "./harness.js";
import type { Series } from "./svg.js";

export const REFERENCE_ENV = "CHORIA_REFERENCE_PROVISIONER";
export type HelperKind = "python-cfssl" | "fast" | "fixed";
export const HELPERS: readonly HelperKind[] = ["python-cfssl", "fast", "fixed"];
/** the reference's minimum is 1m; longer is better here: no periodic rediscovery mid-run, and no node skipped for waiting over 2 x interval */
const INTERVAL = "1h";
const STALL_MS = 60_000;

export interface ReferenceRun {
  helper: HelperKind;
  workers: number;
  nodes: number;
  provisioned: number;
  wallMs: number;
  nodesPerMin: number;
  latencyMs: { p50: number; p99: number; max: number };
  provisionerCpuS: number;
  /** the helper processes the reference spawned and reaped (cutime + cstime) */
  helperCpuS: number;
  /** cfssl serve, for the python-cfssl helper */
  signerCpuS: number;
  peakRssMiB: number;
  natsCpuS: number;
  fleetCpuS: number;
  violationsByKind: Record<string, number>;
  /** [seconds since the fleet's start, nodes done] */
  points: Array<[number, number]>;
}

interface Helpers {
  command: Record<HelperKind, string>;
  cfssl?: CfsslServer;
  close(): Promise<void>;
}

/** user+system of a process and of its reaped children, from /proc (Linux), in seconds */
export function procCpuWithChildren(pid: number): { self: number; children: number } {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { self: (Number(f[11]) + Number(f[12])) / 100, children: (Number(f[13]) + Number(f[14])) / 100 };
}

export const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;

/** the fast helper, built from bench/fast-helper with the local Go toolchain, cached by source hash */
function buildFastHelper(): string {
  const src = join(REPO, "bench/fast-helper");
  const hash = createHash("sha256").update(readFileSync(join(src, "main.go"))).update(readFileSync(join(src, "go.mod"))).digest("hex").slice(0, 16);
  const out = join(homedir(), ".cache/choria-provisioner-bench", `fast-helper-${hash}`);
  if (!existsSync(out)) {
    mkdirSync(join(homedir(), ".cache/choria-provisioner-bench"), { recursive: true });
    execFileSync("go", ["build", "-o", out, "."], { cwd: src, env: { ...process.env, GOWORK: "off", GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-mod=mod" }, stdio: ["ignore", "ignore", "inherit"] });
  }
  return out;
}

/** the system's python3: a version manager's shim (pyenv) costs several times the interpreter's start-up */
export function systemPython(): string {
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

async function prepareHelpers(caDir: string, kinds: readonly HelperKind[]): Promise<Helpers> {
  const caCert = join(caDir, CA_CERT_FILE);
  const caKey = join(caDir, CA_KEY_FILE);
  const python = systemPython();
  const cfssl = kinds.includes("python-cfssl") ? await startCfssl(caCert, caKey) : undefined;
  return {
    command: {
      "python-cfssl": cfssl ? `${python} ${join(REPO, "bench/legacy-helper.py")} --cfssl ${cfssl.url} --ca ${caCert}` : "",
      fast: kinds.includes("fast") ? `${buildFastHelper()} ${caCert} ${caKey}` : "",
      fixed: `/bin/sh ${join(REPO, "bench/legacy-helper.sh")}`,
    },
    cfssl,
    close: async () => void (await cfssl?.stop()),
  };
}

/**
 * Resolves once the reference listens for startup events: a request to that subject gets "no
 * responders" until it subscribes, and then no answer. The probe is a lifecycle event of another
 * type, which the reference reads and ignores.
 */
export async function waitSubscribed(url: string, exited: () => boolean, withinMs = 30_000, caFile?: string): Promise<void> {
  const nc = await connectNats({ servers: url, name: "bench-reference-probe", ...(caFile ? { tls: { caFile } } : {}) });
  const probe = encodeLifecycle(newLifecycleEvent("shutdown", "probe.bench.invalid", "provision_mode_server"));
  const deadline = performance.now() + withinMs;
  try {
    for (;;) {
      if (exited()) throw new Error("the reference provisioner exited before it subscribed to startup events");
      try {
        await nc.request(lifecycleSubject("startup", "provision_mode_server"), probe, { timeout: 300 });
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== "503") return; // a timeout: someone is subscribed
      }
      if (performance.now() > deadline) throw new Error(`the reference provisioner did not subscribe to startup events within ${withinMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await nc.close();
  }
}

export interface ReferenceProcess {
  pid: number;
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * Writes the reference's configuration into `work` (INTERVAL unless told, log at info to a file,
 * choria_insecure, features.pki) and starts it against `url`; resolves once it listens for
 * startup events.
 */
export async function startReferenceProvisioner(o: { binary: string; url: string; work: string; workers: number; helper: string; token: string; /** the broker offers TLS: the probe verifies it with this CA */ caFile?: string; /** default INTERVAL */ interval?: string }): Promise<ReferenceProcess> {
  writeFileSync(join(o.work, "client.conf"), `identity = provisioner.bench\nplugin.choria.middleware_hosts = ${o.url}\nplugin.choria.use_srv = false\n`);
  writeFileSync(
    join(o.work, "provisioner.yaml"),
    [
      `workers: ${o.workers}`,
      `interval: ${o.interval ?? INTERVAL}`,
      `logfile: ${join(o.work, "provisioner.log")}`,
      "loglevel: info",
      `helper: ${JSON.stringify(o.helper)}`,
      `token: ${o.token}`,
      "choria_insecure: true",
      "site: bench",
      "features: {pki: true}",
      "",
    ].join("\n"),
  );
  const ref = spawn(o.binary, ["run", "--config", join(o.work, "provisioner.yaml"), "--choria-config", join(o.work, "client.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  killOnExit(ref);
  let stderr = "";
  ref.stderr!.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const refExited = new Promise<void>((r) => ref.once("exit", () => r()));
  const proc: ReferenceProcess = {
    pid: ref.pid!,
    exited: () => ref.exitCode !== null,
    async stop() {
      if (ref.exitCode === null) ref.kill("SIGTERM");
      await Promise.race([refExited, new Promise((r) => setTimeout(r, 5000))]);
      if (ref.exitCode === null) ref.kill("SIGKILL");
    },
  };
  try {
    await waitSubscribed(o.url, proc.exited, 30_000, o.caFile);
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}: ${stderr.trim()}`);
  }
  return proc;
}

export async function runReference(o: { binary: string; nodes: number; helper: HelperKind; helpers: Helpers; workers: number; log?: (s: string) => void }): Promise<ReferenceRun> {
  const work = mkdtempSync(join(tmpdir(), "cp-bench-ref-"));
  const srv = await startNatsServer();
  const fleet = spawnChild(benchFile("fleet-child.ts"), [], ["--max-old-space-size=4096"]);
  const signerPid = o.helper === "python-cfssl" ? o.helpers.cfssl?.pid : undefined;
  let ref: ReferenceProcess | undefined;
  try {
    ref = await startReferenceProvisioner({ binary: o.binary, url: srv.url, work, workers: o.workers, helper: o.helpers.command[o.helper], token: TOKEN });
    const pid = ref.pid;
    const cpu0 = procCpuWithChildren(pid);
    const nats0 = procCpuSeconds(srv.pid);
    const signer0 = signerPid ? procCpuSeconds(signerPid) : 0;
    const startedP = fleet.next("started", 120_000);
    fleet.send({ type: "start", opts: benchFleet(srv.url, o.nodes), track: true });
    await startedP;
    // done when every node has left provisioning mode, or nothing changed for STALL_MS
    let last = -1;
    let lastChange = performance.now();
    let totals: { provisioned: number; shutdown: number; dead: number; violationsByKind: Record<string, number> };
    let cpuS = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      fleet.send({ type: "report" });
      const rep = await fleet.next<{ totals: typeof totals; cpuS: number }>("report", 60_000);
      totals = rep.totals;
      cpuS = rep.cpuS;
      const done = totals.provisioned + totals.shutdown + totals.dead;
      if (done !== last) {
        last = done;
        lastChange = performance.now();
        o.log?.(`  reference ${o.helper} w${o.workers}: ${done}/${o.nodes}`);
      }
      if (done >= o.nodes || performance.now() - lastChange > STALL_MS || ref.exited()) break;
    }
    const cpu = procCpuWithChildren(pid);
    const peakRssMiB = procPeakRssMiB(pid);
    const natsCpuS = procCpuSeconds(srv.pid) - nats0;
    const signerCpuS = signerPid ? procCpuSeconds(signerPid) - signer0 : 0;
    fleet.send({ type: "timing" });
    const { nodes: timing } = await fleet.next<{ nodes: Array<[number, number]> }>("timing", 60_000);
    const lat = timing.map(([a, b]) => b - a).sort((a, b) => a - b);
    const doneMs = timing.map(([, b]) => b).sort((a, b) => a - b);
    const wallMs = doneMs[doneMs.length - 1] ?? 0;
    const points: Array<[number, number]> = [[0, 0]];
    doneMs.forEach((t, i) => {
      const s = Math.ceil(t / 1000);
      if (points[points.length - 1]![0] === s) points[points.length - 1]![1] = i + 1;
      else points.push([s, i + 1]);
    });
    return {
      helper: o.helper,
      workers: o.workers,
      nodes: o.nodes,
      provisioned: timing.length,
      wallMs,
      nodesPerMin: wallMs > 0 ? (timing.length / wallMs) * 60_000 : 0,
      latencyMs: { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? 0 },
      provisionerCpuS: cpu.self - cpu0.self,
      helperCpuS: cpu.children - cpu0.children,
      signerCpuS,
      peakRssMiB,
      natsCpuS,
      fleetCpuS: cpuS,
      violationsByKind: totals!.violationsByKind,
      points,
    };
  } finally {
    await ref?.stop();
    fleet.send({ type: "stop" });
    await Promise.race([fleet.exited, new Promise((r) => setTimeout(r, 5000))]);
    fleet.proc.kill("SIGKILL");
    await srv.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const r1 = (v: number): number => Math.round(v * 10) / 10;
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

function runMetrics(r: ReferenceRun): Record<string, number> {
  const per = (s: number): number => r3((s * 1000) / Math.max(1, r.provisioned));
  return {
    nodes: r.nodes,
    workers: r.workers,
    provisioned: r.provisioned,
    nodes_per_min: Math.round(r.nodesPerMin),
    wall_s: r3(r.wallMs / 1000),
    latency_p50_ms: r1(r.latencyMs.p50),
    latency_p99_ms: r1(r.latencyMs.p99),
    latency_max_ms: r1(r.latencyMs.max),
    provisioner_cpu_s: r3(r.provisionerCpuS),
    provisioner_cpu_ms_per_node: per(r.provisionerCpuS),
    helper_cpu_ms_per_node: per(r.helperCpuS),
    signer_cpu_ms_per_node: per(r.signerCpuS),
    total_cpu_ms_per_node: per(r.provisionerCpuS + r.helperCpuS + r.signerCpuS),
    provisioner_peak_rss_mib: r1(r.peakRssMiB),
    fleet_cpu_s: r3(r.fleetCpuS),
    nats_cpu_s: r3(r.natsCpuS),
    ...Object.fromEntries(Object.entries(r.violationsByKind).map(([k, v]) => [`violations_${k}`, v])),
  };
}

/** ours / the reference, per metric: above 1 is better for nodes/min, below 1 for the rest */
function ratios(ours: E2eResult, r: ReferenceRun): Record<string, number> {
  const oursCpuMs = (ours.provisionerCpuS * 1000) / Math.max(1, ours.daemon.settled);
  const refCpuMs = ((r.provisionerCpuS + r.helperCpuS + r.signerCpuS) * 1000) / Math.max(1, r.provisioned);
  return {
    nodes_per_min: r1(ours.nodesPerMin / r.nodesPerMin),
    latency_p50: r3(ours.daemon.totalMs.p50 / r.latencyMs.p50),
    latency_p99: r3(ours.daemon.totalMs.p99 / r.latencyMs.p99),
    cpu_ms_per_node: r3(oursCpuMs / refCpuMs),
    peak_rss: r3(ours.daemon.peakRssMiB / r.peakRssMiB),
  };
}

export interface ReferenceOptions {
  nodes: number;
  caDir: string;
  /** our e2e run on the same fleet size, for the ratios */
  ours?: E2eResult;
  helpers?: readonly HelperKind[];
  /** worker counts tried on the sweep fleet; default NumCPU x 1, 2, 4, 8, 16 */
  sweepWorkers?: number[];
  /** fleet size of the sweep runs (0: no sweep, NumCPU only) */
  sweepNodes?: number;
  outDir: string;
  log?: (s: string) => void;
}

export interface ReferenceSection {
  summary: Record<string, unknown>;
  goals: Record<string, { value: number | null; goal: string; met: boolean | null; note?: string }>;
  series: Series[];
}

export function binaryInfo(binary: string): Record<string, unknown> {
  let version = "";
  try {
    version = execFileSync(binary, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (e) {
    version = String((e as { stderr?: string }).stderr ?? "").trim();
  }
  return { path: binary, sha256: createHash("sha256").update(readFileSync(binary)).digest("hex"), version_flag: version };
}

/**
 * The reference section of summary.json: "not measured" with the reason when no binary is
 * named, else the sweep, the runs at NumCPU and at the best worker count for each helper, and
 * the ratios ours/reference.
 */
export async function referenceSection(o: ReferenceOptions): Promise<ReferenceSection> {
  const binary = process.env[REFERENCE_ENV];
  if (!binary) return { summary: { measured: false, reason: `${REFERENCE_ENV} is not set: it names a built choria-io/provisioner v0.16.0 binary (see bench/README.md)` }, goals: {}, series: [] };
  if (!existsSync(binary)) return { summary: { measured: false, reason: `${REFERENCE_ENV}=${binary}: no such file` }, goals: {}, series: [] };
  const log = o.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const kinds = o.helpers ?? HELPERS;
  const cores = availableParallelism();
  const sweepWorkers = [...new Set(o.sweepWorkers ?? [1, 2, 4, 8, 16].map((m) => m * cores))].sort((a, b) => a - b);
  const sweepNodes = o.sweepNodes ?? Math.min(1000, o.nodes);
  const helpers = await prepareHelpers(o.caDir, kinds);
  const runs: Record<string, Record<string, unknown>> = {};
  const sweep: Record<string, Record<string, number>> = {};
  const best: Record<string, number> = {};
  const series: Series[] = [];
  const goals: ReferenceSection["goals"] = {};
  const emit = (r: BenchResult): void => {
    writeResult(r, o.outDir);
    printResult(r);
  };
  try {
    for (const helper of kinds) {
      const run = (workers: number, nodes: number): Promise<ReferenceRun> => runReference({ binary, nodes, helper, helpers, workers, log });
      best[helper] = cores;
      if (sweepNodes > 0) {
        sweep[helper] = {};
        for (const w of sweepWorkers) {
          log(`reference: sweep, helper ${helper}, ${w} workers, ${sweepNodes} nodes...`);
          const r = await run(w, sweepNodes);
          sweep[helper][String(w)] = Math.round(r.nodesPerMin);
        }
        best[helper] = Number(Object.entries(sweep[helper]).sort((a, b) => b[1] - a[1])[0]![0]);
      }
      for (const [label, workers] of [["default", cores], ["best", best[helper]!]] as const) {
        if (label === "best" && workers === cores) {
          runs[`${helper}-best`] = { same_as: `${helper}-default` };
          continue;
        }
        log(`reference: helper ${helper}, ${workers} workers (${label}), ${o.nodes} nodes...`);
        const r = await run(workers, o.nodes);
        const name = `reference-${helper}-${label}-${o.nodes / 1000}k`;
        const metrics = runMetrics(r);
        emit({ name, metrics, notes: [`choria-io/provisioner at ${binary}, ${workers} workers (${label}; NumCPU ${cores}), interval ${INTERVAL}, log info to a file, choria_insecure, features.pki`, `helper ${helpers.command[helper]}`, "latency from the fleet's side: a node's first directed request to its restart reply", `load average at the end: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`] });
        runs[`${helper}-${label}`] = { ...metrics, ...(o.ours ? { ours_vs_reference: ratios(o.ours, r) } : {}) };
        series.push({ label: `${o.nodes.toLocaleString("en-US")} nodes, reference + ${helper} helper, ${workers} workers: ${Math.round(r.nodesPerMin).toLocaleString("en-US")}/min`, points: r.points });
      }
    }
  } finally {
    await helpers.close();
  }
  if (o.ours) {
    const ratioOf = (key: string): number | null => ((runs[key]?.ours_vs_reference as Record<string, number> | undefined)?.nodes_per_min ?? null);
    const a = ratioOf("python-cfssl-default") ?? null;
    const cBest = ratioOf(runs["fixed-best"]?.same_as ? "fixed-default" : "fixed-best");
    if (a !== null) goals.vs_reference_python_cfssl = { value: a, goal: ">= 50x the reference with helper (a)", met: a >= 50, note: `ours ${Math.round(o.ours.nodesPerMin)}/min on ${o.nodes} nodes` };
    if (cBest !== null) goals.vs_reference_fixed_best = { value: cBest, goal: ">= 5x the reference with helper (c), best workers", met: cBest >= 5, note: `reference best workers ${best.fixed}` };
  }
  return {
    summary: {
      measured: true,
      binary: binaryInfo(binary),
      nodes: o.nodes,
      interval: INTERVAL,
      cores,
      helpers: Object.fromEntries(kinds.map((k) => [k, helpers.command[k]])),
      signer: "python-cfssl: cfssl serve (Debian golang-cfssl) /api/v1/cfssl/sign over HTTP on loopback, the same ECDSA P-256 CA as ours; fast: Go crypto/x509 in the helper; fixed: no signing",
      sweep: { nodes: sweepNodes, nodes_per_min_by_workers: sweep, best_workers: best },
      runs,
      ours: o.ours ? { nodes_per_min: Math.round(o.ours.nodesPerMin), latency_p50_ms: r1(o.ours.daemon.totalMs.p50), latency_p99_ms: r1(o.ours.daemon.totalMs.p99), cpu_ms_per_node: r3((o.ours.provisionerCpuS * 1000) / Math.max(1, o.ours.daemon.settled)), peak_rss_mib: r1(o.ours.daemon.peakRssMiB) } : undefined,
      definitions:
        "nodes/min: nodes whose restart reply left the node / ms from the fleet's start to the last one. Latency: ours from the decision record (first RPC to last reply); the reference's from the fleet's side (first directed request to the restart reply). CPU per node: ours the daemon process (its CA included); the reference's provisioner process, plus helper processes (reaped children, /proc cutime+cstime), plus cfssl serve for python-cfssl. Ratios are ours/reference: above 1 better for nodes_per_min, below 1 better for the rest",
    },
    goals,
    series,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: "string", default: "2000" },
      "sweep-nodes": { type: "string" },
      "sweep-workers": { type: "string" },
      helpers: { type: "string" },
      ours: { type: "boolean", default: true },
      out: { type: "string", default: join(REPO, "bench/results/quick") },
    },
    allowNegative: true,
  });
  const ints = (v: string | undefined): number[] | undefined => v?.split(",").map((s) => Number(s.trim()));
  const nodes = Number(values.nodes);
  const helpersArg = values.helpers?.split(",") as HelperKind[] | undefined;
  for (const h of helpersArg ?? []) if (!HELPERS.includes(h)) throw new Error(`--helpers: unknown helper ${h} (${HELPERS.join(", ")})`);
  if (!process.env[REFERENCE_ENV]) throw new Error(`${REFERENCE_ENV} must name a choria-io/provisioner binary`);
  const caDir = mkdtempSync(join(tmpdir(), "cp-bench-ca-"));
  try {
    await initBuiltinCa(caDir, { key: "ecdsa" });
    let ours: E2eResult | undefined;
    if (values.ours) {
      process.stderr.write(`ours: ${nodes} nodes, policy engine...\n`);
      ours = await runE2e({ nodes, caDir });
      process.stderr.write(`ours: ${Math.round(ours.nodesPerMin)}/min\n`);
    }
    const sec = await referenceSection({ nodes, caDir, ours, helpers: helpersArg, sweepWorkers: ints(values["sweep-workers"]), sweepNodes: values["sweep-nodes"] !== undefined ? Number(values["sweep-nodes"]) : undefined, outDir: values.out! });
    mkdirSync(values.out!, { recursive: true });
    const file = join(values.out!, "reference.json");
    writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine: machine(), load_average: loadavg().map((v) => +v.toFixed(2)), reference: sec.summary, goals: sec.goals }, null, 2) + "\n");
    process.stdout.write(`${JSON.stringify(sec.goals, null, 2)}\nresults in ${file}\n`);
  } finally {
    rmSync(caDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  // exit on a signal, so that the exit hooks stop the nats-servers and the reference with us
  onStopSignals("reference", (signal) => process.exit(signalExitCode(signal)), 0);
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
