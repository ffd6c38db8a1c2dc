/**
 * Real go-choria servers, ours against the reference: N servers (GOMAXPROCS=1 each) in
 * provisioning mode on a RealLab (test/helpers/real-choria.ts: the lab's CA, a provisioning
 * nats-server offering TLS with allow_non_tls, a home nats-server requiring verified mutual TLS
 * with certificates of the lab's CA), provisioned with PKI on by
 *
 *   ours       the daemon (daemon-child.ts, own process) with its built-in CA on the lab's CA
 *              directory and a home policy (homePolicy: the home broker, file security under
 *              the server's ssl directory)
 *   reference  choria-io/provisioner (CHORIA_REFERENCE_PROVISIONER) with helper (a):
 *              legacy-helper.py --home, the seed helper's decision with the lab's home broker
 *              and the server's own ssldir, signing through a real `cfssl serve` holding the
 *              lab's CA key and certificate
 *
 * each on a lab of its own, one after the other. A server is home when its own `startup` event
 * (component `server`) reaches the mTLS home broker, as an EventWatch there sees it: only a
 * server holding a certificate of the lab's CA for its identity gets in. The clock runs from the
 * first provisioning-mode startup event (on the provisioning broker) to the last arrival; a
 * node's latency from its own provisioning-mode startup event to its arrival.
 *
 * The reference runs at NumCPU workers (its default) and NumCPU x 16.
 *
 * Alone: node --import tsx bench/real-servers.ts --servers 50 [--out DIR] [--no-reference] [--reference-workers 2,32]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { onStopSignals, signalExitCode } from "../src/daemon/stop-signals.js";
import { startCfssl } from "../test/ca/cfssl-server.js";
import type { EventWatch, RealLab, RealServer } from "../test/helpers/real-choria.js";
import { benchFile, procCpuSeconds, procPeakRssMiB, spawnChild } from "./children.js";
import type { DaemonChildConfig, DaemonChildSummary } from "./daemon-child.js";
import { REPO } from "./e2e.js";
import { machine } from "./harness.js";
import { binaryInfo, procCpuWithChildren, quantile, REFERENCE_ENV, startReferenceProvisioner, systemPython } from "./reference.js";

type Lab = typeof import("../test/helpers/real-choria.js");
export type RealProvisioner = "ours" | "reference";

/**
 * Both provisioners rediscover the fleet this often: the reference's minimum. A real server can
 * fail a step (under load, its gencsr can outlast the agent's 20 s); both then drop the node until
 * the next discovery finds it again, as in production, so it still comes home.
 */
const REDISCOVERY = "1m";
/** a run ends when every server is home, or when none arrived for this long (over REDISCOVERY) */
const STALL_MS = 120_000;

export interface RealServersRun {
  provisioner: RealProvisioner;
  servers: number;
  arrived: number;
  /** first provisioning-mode startup event to the last arrival at home */
  wallMs: number;
  /** first to last provisioning-mode startup event: how long the servers took to come up at all */
  startupSpreadMs: number;
  latencyMs: { p50: number; p99: number; max: number };
  provisionerCpuS: number;
  /** the reference's helper processes (reaped children of the provisioner) */
  helperCpuS: number;
  /** cfssl serve for the reference */
  signerCpuS: number;
  peakRssMiB: number;
  /** each real server's RSS once home (VmRSS) and its peak (VmHWM) */
  serverRssMiB: { mean: number; max: number; peakMax: number };
  /** nodes' passes that failed (a step's timeout or error) and left the node to the next discovery */
  failures: number;
  /** ours: the decision records' outcomes and mean step durations (where a node's time went) */
  outcomes?: Record<string, number>;
  stepMeansMs?: Record<string, number>;
}

/** The real go-choria binary: CHORIA_REAL_BIN, else scripts/build-real-choria.mjs (builds and caches it) */
export function realChoriaBinary(): { bin?: string; reason?: string } {
  const env = process.env.CHORIA_REAL_BIN;
  if (env) return existsSync(env) ? { bin: env } : { reason: `CHORIA_REAL_BIN=${env}: no such file` };
  const r = spawnSync(process.execPath, [join(REPO, "scripts/build-real-choria.mjs"), "--quiet"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  try {
    const out = JSON.parse(r.stdout) as { ok: boolean; choria?: string; reason?: string };
    return out.ok && out.choria ? { bin: out.choria } : { reason: `the real go-choria is not available: ${out.reason ?? "scripts/build-real-choria.mjs failed"}` };
  } catch {
    return { reason: `scripts/build-real-choria.mjs exited ${r.status} without a result` };
  }
}

/** SIGKILLs these processes if this one exits first (the lab stops them otherwise); returns the remover */
function killPidsOnExit(pids: () => number[]): () => void {
  const kill = (): void => {
    for (const pid of pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone already */
      }
    }
  };
  process.once("exit", kill);
  return () => void process.off("exit", kill);
}

/** the lab module, loaded once the binary it runs is known (it reads CHORIA_REAL_BIN on load) */
async function loadLab(bin: string): Promise<Lab> {
  process.env.CHORIA_REAL_BIN = bin;
  return import("../test/helpers/real-choria.js");
}

const memAvailableMiB = (): number => Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024;

function procRssMiB(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

interface Provisioner {
  /** CPU seconds so far: the provisioner itself, its reaped helpers, its signer */
  cpu(): { self: number; helpers: number; signer: number };
  peakRssMiB(): Promise<number>;
  summary?(): Promise<DaemonChildSummary>;
  /** the reference's failed passes, from its log */
  failures?(): number;
  stop(): Promise<void>;
}

/** ours: the daemon in a process of its own, the lab's CA as its built-in CA, a home policy */
async function startOurs(rc: Lab, lab: RealLab, servers: number, work: string): Promise<Provisioner> {
  const pol = lab.writePolicy("lab", rc.homePolicy(lab));
  const daemon = spawnChild(benchFile("daemon-child.ts"), []);
  const cfg: DaemonChildConfig = {
    config: {
      ...(await lab.daemonBroker()),
      identity: "provisioner.bench",
      ...pol,
      ca: { dir: lab.caDir },
      audit: { file: join(work, "audit.jsonl") },
      // the servers announce themselves with startup events; discovery finds the ones a failed step dropped
      discovery: { at_start: false, interval: REDISCOVERY },
      watch: false,
    },
    env: lab.daemonEnv(),
    logFile: join(work, "provisioner.log"),
    logLevel: "info",
    nodes: servers,
  };
  daemon.send({ type: "start", cfg });
  await daemon.next("ready", 120_000);
  const done = daemon.next<{ summary: DaemonChildSummary }>("done", 3_600_000);
  done.catch(() => undefined);
  daemon.send({ type: "go" });
  const pid = daemon.proc.pid!;
  let summary: DaemonChildSummary | undefined;
  const finish = async (): Promise<DaemonChildSummary> => {
    daemon.send({ type: "finish" });
    return (summary ??= (await done).summary);
  };
  return {
    cpu: () => ({ self: procCpuSeconds(pid), helpers: 0, signer: 0 }),
    // sampled from the "go" on, as for the e2e runs: tsx's start-up is not the daemon's
    peakRssMiB: async () => (await finish()).peakRssMiB,
    summary: finish,
    async stop() {
      daemon.send({ type: "stop" });
      await Promise.race([daemon.exited, new Promise((r) => setTimeout(r, 5000))]);
      daemon.proc.kill("SIGKILL");
    },
  };
}

/** the helper (a) command line for a lab: the seed decision, the lab's home, cfssl at `cfsslUrl` */
export function helperACommand(lab: RealLab, cfsslUrl: string): string {
  return `${systemPython()} ${join(REPO, "bench/legacy-helper.py")} --cfssl ${cfsslUrl} --ca ${lab.caFile} --home ${lab.home.url}`;
}

/** the reference with helper (a), cfssl serve holding the lab's CA */
async function startReference(rc: Lab, lab: RealLab, binary: string, workers: number, work: string): Promise<Provisioner & { helper: string }> {
  const cfssl = await startCfssl(lab.caFile, join(lab.caDir, "ca-key.pem"));
  const unhook = killPidsOnExit(() => [cfssl.pid]);
  const helper = helperACommand(lab, cfssl.url);
  try {
    const ref = await startReferenceProvisioner({ binary, url: lab.provisioning.url, work, workers, helper, token: rc.TOKEN, caFile: lab.caFile, interval: REDISCOVERY });
    return {
      helper,
      cpu: () => {
        const c = procCpuWithChildren(ref.pid);
        return { self: c.self, helpers: c.children, signer: procCpuSeconds(cfssl.pid) };
      },
      peakRssMiB: async () => procPeakRssMiB(ref.pid),
      failures: () => (readFileSync(join(work, "provisioner.log"), "utf8").match(/Could not provision /g) ?? []).length,
      async stop() {
        await ref.stop();
        await cfssl.stop();
        unhook();
      },
    };
  } catch (e) {
    await cfssl.stop();
    unhook();
    throw e;
  }
}

/** resolves when every identity is home, or once none arrived for STALL_MS */
async function untilHome(home: EventWatch, ids: string[], log: (s: string) => void, label: string): Promise<void> {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    try {
      await home.until((w) => ids.every((id) => w.identities("startup", "server").has(id)), 5000, "every server home");
      return;
    } catch {
      const n = home.identities("startup", "server").size;
      if (n !== last) {
        last = n;
        lastChange = performance.now();
        log(`  ${label}: ${n}/${ids.length} home`);
      } else if (performance.now() - lastChange > STALL_MS) {
        log(`  ${label}: no arrival for ${STALL_MS / 1000} s, ending with ${n}/${ids.length}`);
        return;
      }
    }
  }
}

/** the first time each identity was seen with this event, by identity */
function firstSeen(w: EventWatch, type: string, component: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of w.events) if (e.type.endsWith(`.${type}`) && e.component === component && !m.has(e.identity)) m.set(e.identity, e.at);
  return m;
}

export async function runRealServers(rc: Lab, o: { provisioner: RealProvisioner; servers: number; referenceBinary?: string; /** the reference's; default NumCPU, its own default */ workers?: number; log: (s: string) => void }): Promise<RealServersRun & { helper?: string }> {
  const lab = await rc.RealLab.start();
  const work = mkdtempSync(join(tmpdir(), "cp-bench-real-"));
  const servers: RealServer[] = [];
  // the real servers are not children that die with us: an interrupted bench must not leave them
  const unhook = killPidsOnExit(() => servers.map((s) => s.pid));
  try {
    const prov = await rc.EventWatch.open(await lab.provisioningConnection());
    lab.onStop(() => prov.close());
    const home = await rc.EventWatch.open(await lab.homeConnection());
    lab.onStop(() => home.close());
    const p = o.provisioner === "ours" ? await startOurs(rc, lab, o.servers, work) : await startReference(rc, lab, o.referenceBinary!, o.workers ?? availableParallelism(), work);
    lab.onStop(() => p.stop());
    const ids = Array.from({ length: o.servers }, (_, i) => `rs${String(i + 1).padStart(3, "0")}.real.example.net`);
    const cpu0 = p.cpu();
    for (const id of ids) servers.push(lab.startServer(id));
    await untilHome(home, ids, o.log, o.provisioner);
    const cpu1 = p.cpu();
    const summary = await p.summary?.();
    const rss = servers.map((s) => procRssMiB(s.pid)).filter((r) => !Number.isNaN(r.rss));
    const up = firstSeen(prov, "startup", "provision_mode_server");
    const homeAt = firstSeen(home, "startup", "server");
    const ups = [...up.values()].sort((a, b) => a - b);
    const t0 = ups[0] ?? 0;
    const lat = ids.filter((id) => homeAt.has(id) && up.has(id)).map((id) => homeAt.get(id)! - up.get(id)!).sort((a, b) => a - b);
    const arrivals = ids.filter((id) => homeAt.has(id)).map((id) => homeAt.get(id)!);
    return {
      provisioner: o.provisioner,
      helper: "helper" in p ? (p as { helper: string }).helper : undefined,
      servers: o.servers,
      arrived: arrivals.length,
      wallMs: arrivals.length ? Math.max(...arrivals) - t0 : 0,
      startupSpreadMs: ups.length ? ups[ups.length - 1]! - t0 : 0,
      latencyMs: { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? 0 },
      provisionerCpuS: cpu1.self - cpu0.self,
      helperCpuS: cpu1.helpers - cpu0.helpers,
      signerCpuS: cpu1.signer - cpu0.signer,
      peakRssMiB: await p.peakRssMiB(),
      serverRssMiB: { mean: rss.reduce((a, r) => a + r.rss, 0) / Math.max(1, rss.length), max: Math.max(0, ...rss.map((r) => r.rss)), peakMax: Math.max(0, ...rss.map((r) => r.hwm)) },
      failures: summary ? (summary.outcomes.error ?? 0) : (p.failures?.() ?? 0),
      outcomes: summary?.outcomes,
      stepMeansMs: summary?.stepMeansMs,
    };
  } finally {
    await lab.stop();
    unhook();
    rmSync(work, { recursive: true, force: true });
  }
}

const r1 = (v: number): number => Math.round(v * 10) / 10;
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

function metrics(r: RealServersRun): Record<string, unknown> {
  const total = r.provisionerCpuS + r.helperCpuS + r.signerCpuS;
  return {
    servers: r.servers,
    arrived: r.arrived,
    seconds_first_startup_to_last_arrival: r3(r.wallMs / 1000),
    nodes_per_min: r1(r.wallMs > 0 ? (r.arrived / r.wallMs) * 60_000 : 0),
    latency_p50_ms: Math.round(r.latencyMs.p50),
    latency_p99_ms: Math.round(r.latencyMs.p99),
    latency_max_ms: Math.round(r.latencyMs.max),
    startup_spread_s: r3(r.startupSpreadMs / 1000),
    failed_passes: r.failures,
    provisioner_cpu_s: r3(r.provisionerCpuS),
    helper_cpu_s: r3(r.helperCpuS),
    signer_cpu_s: r3(r.signerCpuS),
    total_cpu_s: r3(total),
    cpu_ms_per_node: r1((total * 1000) / Math.max(1, r.arrived)),
    provisioner_peak_rss_mib: r1(r.peakRssMiB),
    server_rss_mib_mean: r1(r.serverRssMiB.mean),
    server_rss_mib_max: r1(r.serverRssMiB.max),
    server_peak_rss_mib_max: r1(r.serverRssMiB.peakMax),
    ...(r.outcomes ? { outcomes: r.outcomes } : {}),
    ...(r.stepMeansMs ? { step_mean_ms: Object.fromEntries(Object.entries(r.stepMeansMs).map(([k, v]) => [k, Math.round(v)])) } : {}),
  };
}

/** ours / the reference: above 1 is better for nodes_per_min, below 1 for the rest */
function ratios(ours: RealServersRun, ref: RealServersRun): Record<string, number> {
  const cpu = (r: RealServersRun): number => (r.provisionerCpuS + r.helperCpuS + r.signerCpuS) / Math.max(1, r.arrived);
  return {
    seconds_first_startup_to_last_arrival: r3(ours.wallMs / ref.wallMs),
    nodes_per_min: r3(ref.wallMs / ours.wallMs),
    latency_p50: r3(ours.latencyMs.p50 / ref.latencyMs.p50),
    latency_p99: r3(ours.latencyMs.p99 / ref.latencyMs.p99),
    cpu_per_node: r3(cpu(ours) / cpu(ref)),
    peak_rss: r3(ours.peakRssMiB / ref.peakRssMiB),
  };
}

/**
 * The real-servers section: "not measured" with the reason when the real go-choria is not
 * available; ours, then the reference when CHORIA_REFERENCE_PROVISIONER names it (else its
 * reason). Writes real-servers.json into `outDir` and returns what it wrote.
 */
/** the run with the most arrivals per second */
const fastest = <T extends { run: RealServersRun }>(runs: T[]): T => [...runs].sort((a, b) => b.run.arrived / b.run.wallMs - a.run.arrived / a.run.wallMs)[0]!;

/** NumCPU (its default) and NumCPU x 16 (the top of reference.ts's sweep): every fair advantage */
export function defaultReferenceWorkers(): number[] {
  return [availableParallelism(), availableParallelism() * 16];
}

export async function realServersSection(o: { servers: number; outDir: string; reference?: boolean; referenceWorkers?: number[]; log?: (s: string) => void }): Promise<Record<string, unknown>> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const real = realChoriaBinary();
  const memBefore = memAvailableMiB();
  let out: Record<string, unknown>;
  if (!real.bin) out = { measured: false, reason: real.reason };
  else {
    const rc = await loadLab(real.bin);
    log(`real servers: ${o.servers} go-choria servers, ours (daemon, built-in CA, home policy)...`);
    const ours = await runRealServers(rc, { provisioner: "ours", servers: o.servers, log });
    log(`real servers: ours ${ours.arrived}/${ours.servers} home in ${(ours.wallMs / 1000).toFixed(1)} s`);
    const binary = process.env[REFERENCE_ENV];
    let reference: Record<string, unknown>;
    const refs: Array<{ workers: number; run: RealServersRun & { helper?: string } }> = [];
    if (o.reference === false) reference = { measured: false, reason: "--no-reference" };
    else if (!binary) reference = { measured: false, reason: `${REFERENCE_ENV} is not set: it names a built choria-io/provisioner v0.16.0 binary (see bench/README.md)` };
    else if (!existsSync(binary)) reference = { measured: false, reason: `${REFERENCE_ENV}=${binary}: no such file` };
    else {
      for (const workers of o.referenceWorkers ?? defaultReferenceWorkers()) {
        log(`real servers: ${o.servers} go-choria servers, the reference with helper (a) (python, cfssl serve), ${workers} workers...`);
        const run = await runRealServers(rc, { provisioner: "reference", servers: o.servers, referenceBinary: binary, workers, log });
        log(`real servers: reference, ${workers} workers: ${run.arrived}/${run.servers} home in ${(run.wallMs / 1000).toFixed(1)} s`);
        refs.push({ workers, run });
      }
      reference = {
        measured: true,
        binary: binaryInfo(binary),
        helper: refs[0]!.run.helper,
        default_workers: availableParallelism(),
        best_workers: fastest(refs).workers,
        runs: Object.fromEntries(refs.map(({ workers, run }) => [`workers_${workers}`, { workers, ...metrics(run) }])),
      };
    }
    const ref = refs.find((r) => r.workers === availableParallelism())?.run ?? refs[0]?.run;
    const bestRef = refs.length ? fastest(refs).run : undefined;
    const perServer = Math.max(ours.serverRssMiB.mean, ...refs.map((r) => r.run.serverRssMiB.mean));
    out = {
      measured: true,
      choria: real.bin,
      servers: o.servers,
      gomaxprocs_per_server: 1,
      mem_available_mib_at_start: Math.round(memBefore),
      servers_that_fit_in_memory: perServer > 0 ? Math.floor(memBefore / perServer) : null,
      rediscovery_interval: REDISCOVERY,
      ours: { config: `daemon defaults, built-in ECDSA CA on the lab's CA directory, homePolicy (test/helpers/real-choria.ts), startup events and discovery every ${REDISCOVERY}, restart_splay 1, log info to a file, audit on`, ...metrics(ours) },
      reference,
      ...(ref && bestRef ? { ours_vs_reference: { default_workers: ratios(ours, ref), best_workers: ratios(ours, bestRef) } } : {}),
    };
  }
  const result = {
    at: new Date().toISOString(),
    machine: machine(),
    load_average: loadavg().map((v) => +v.toFixed(2)),
    ...out,
    definitions:
      "A server is home when its own startup event (component server) reaches the home broker, which admits only verified mTLS with certificates of the lab's CA. seconds: from the first provisioning-mode startup event on the provisioning broker to the last arrival; nodes/min: arrivals over that time. Latency: a server's provisioning-mode startup event to its arrival. CPU: the provisioner process (ours: main thread and CA workers; the reference: plus its reaped helper processes and cfssl serve). Peak RSS: ours sampled from the run's start (the e2e runs' measure), the reference's VmHWM. Server RSS: VmRSS of each real server once home. failed_passes: a node's pass that failed (ours: error records; the reference: 'Could not provision' in its log), after which the next discovery takes the node again. Ratios are ours/reference, against the reference at its default workers (NumCPU) and at the best of the worker counts run.",
  };
  mkdirSync(o.outDir, { recursive: true });
  writeFileSync(join(o.outDir, "real-servers.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: "string", default: "50" },
      out: { type: "string", default: join(REPO, "bench/results") },
      reference: { type: "boolean", default: true },
      "reference-workers": { type: "string" },
    },
    allowNegative: true,
  });
  const servers = Number(values.servers);
  if (!Number.isInteger(servers) || servers < 1) throw new Error(`--servers takes a positive integer, got ${JSON.stringify(values.servers)}`);
  const referenceWorkers = values["reference-workers"]?.split(",").map((v) => Number(v.trim()));
  if (referenceWorkers?.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`--reference-workers takes positive integers, got ${JSON.stringify(values["reference-workers"])}`);
  const result = await realServersSection({ servers, outDir: values.out!, reference: values.reference, referenceWorkers });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\nresults in ${join(values.out!, "real-servers.json")}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  // exit on a signal, so that the exit hooks stop the real servers, brokers and provisioners with us
  onStopSignals("real-servers", (signal) => process.exit(signalExitCode(signal)), 0);
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
