/**
 * End-to-end provisioning benchmarks and the machine bounds they are judged against. Each
 * e2e run has its own nats-server, a simulated fleet in one child process and the daemon
 * (daemon/start.ts startDaemon, the product's assembly) in another, so the provisioner's CPU
 * and RSS are its own.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { helperDeciderFor } from "../src/daemon/start.js";
import { resolveSettings } from "../src/config/index.js";
import { createMetrics } from "../src/metrics/metrics.js";
import { connectNats, ReplyWatch, RpcClient, startNatsServer } from "../src/transport/index.js";
import { identityOf, type FleetOptions } from "../src/sim/index.js";
import type { Inventory } from "../src/types/index.js";
import { benchFile, procCpuSeconds, spawnChild } from "./children.js";
import type { DaemonChildConfig, DaemonChildSummary } from "./daemon-child.js";
import type { EssentialRunOptions } from "./essential-child.js";
import { inventories } from "./policy.bench.js";
import { csrPool } from "./ca.bench.js";
import { openBuiltinCa } from "../src/ca/index.js";
import { loadPolicySet } from "../src/policy/index.js";
import { configureRequestData } from "../src/provision/flow.js";

export const TOKEN = "bench-token";
export const REPO = new URL("../", import.meta.url).pathname;

export interface E2eOptions {
  nodes: number;
  caDir: string;
  /** legacy exec-helper mode instead of the policy engine */
  helper?: string;
  /** write a V8 CPU profile of the provisioner process into this directory */
  profileDir?: string;
  logLevel?: string;
  /** write a V8 CPU profile of the fleet (simulator) process into this directory */
  fleetProfileDir?: string;
  /** daemon workers (default: the daemon's default) */
  workers?: number;
  /** extra node/V8 flags for the provisioner and the fleet processes (for experiments such as GC settings) */
  daemonExecArgv?: string[];
  fleetExecArgv?: string[];
  onProgress?: (p: { settled: number; records: number; queued: number; rssMiB: number; s: number }) => void;
  /**
   * the arrival comparison: set (true or false), the shipped policies' broker sets point at the
   * bench's broker, so restarted nodes really arrive there in both runs; true turns the daemon's
   * arrival tracking (and guarded rollout, first version trusted) on
   */
  arrival?: boolean;
  /** runs after the daemon's CPU baseline, just before the fleet starts (the phantom bench publishes its announcements here) */
  beforeFleet?: (brokerUrl: string) => Promise<void>;
}

export interface E2eResult {
  nodes: number;
  mode: "policy" | "helper";
  /** arrival tracking on or off in an arrival comparison run */
  arrival?: boolean;
  /** ms from the fleet's start to the last node settled */
  wallMs: number;
  /** ms from the daemon's go to the fleet's start: what beforeFleet took (else about 0) */
  fleetStartMs: number;
  nodesPerMin: number;
  daemon: DaemonChildSummary;
  fleet: { cpuS: number; rssMiB: number; listeningMs: number; startupCompleteMs: number; totals: Record<string, unknown> };
  natsCpuS: number;
  provisionerCpuS: number;
  profile?: string;
}

/** The end-to-end runs' fleet: the same nodes whichever provisioner takes them */
export function benchFleet(servers: string, nodes: number): FleetOptions {
  return {
    servers,
    nodes,
    seed: 1,
    token: TOKEN,
    // a restarted node leaves provisioning mode 50 ms after its reply instead of the splay's seconds
    restartDelayMs: 50,
    // "upgrade" decisions fall through to configure: every node ends in one pass, no re-announce
    upgradable: false,
  };
}

/**
 * The shipped policies and rules with every broker pointed at `url`: a restarted node of the
 * fleet goes home to the bench's own broker (the example.net brokers do not exist).
 */
export function localPolicies(work: string, url: string): { policies: string; rules: string } {
  const out = { policies: join(work, "policies"), rules: join(work, "rules") };
  cpSync(join(REPO, "policies"), out.policies, { recursive: true });
  cpSync(join(REPO, "rules"), out.rules, { recursive: true });
  const file = join(out.policies, "fleet.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace(/nats:\/\/[\w.-]+\.example\.net:\d+/g, url));
  return out;
}

function daemonConfig(o: { broker: string; caDir: string; helper?: string; workers?: number; work: string; arrival?: boolean }): DaemonChildConfig["config"] {
  const pol = o.arrival === undefined ? { policies: join(REPO, "policies"), rules: join(REPO, "rules") } : localPolicies(o.work, o.broker);
  return {
    broker: o.broker,
    identity: "provisioner.bench",
    ...pol,
    ...(o.arrival ? { arrival: { deadline: "2m" }, rollout: { trust_initial: true } } : {}),
    // the fleet announces itself with startup events; no periodic discovery re-offers deferred
    // nodes during the run (that would count them twice)
    discovery: { at_start: false, interval: "1h" },
    // no file watcher: other work in the same checkout must not trigger a policy reload mid-run
    watch: false,
    ca: { dir: o.caDir },
    audit: { file: join(o.work, "audit.jsonl") },
    helper: o.helper,
    ...(o.workers ? { workers: o.workers } : {}),
  };
}

export async function runE2e(o: E2eOptions): Promise<E2eResult> {
  const work = mkdtempSync(join(tmpdir(), "cp-bench-e2e-"));
  const srv = await startNatsServer();
  const execArgv = ["--max-old-space-size=4096", ...(o.daemonExecArgv ?? [])];
  if (o.profileDir) execArgv.push("--cpu-prof", `--cpu-prof-dir=${o.profileDir}`);
  const daemon = spawnChild(benchFile("daemon-child.ts"), [], execArgv);
  const fleet = spawnChild(benchFile("fleet-child.ts"), [], ["--max-old-space-size=4096", ...(o.fleetExecArgv ?? []), ...(o.fleetProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.fleetProfileDir}`] : [])]);
  try {
    const cfg: DaemonChildConfig = {
      config: daemonConfig({ broker: srv.url, caDir: o.caDir, helper: o.helper, workers: o.workers, work, arrival: o.arrival }),
      env: { CHORIA_PROVISIONER_TOKEN: TOKEN },
      logFile: join(work, "provisioner.log"),
      logLevel: o.logLevel ?? "info",
      nodes: o.nodes,
    };
    daemon.send({ type: "start", cfg });
    await daemon.next("ready", 60_000);
    const done = daemon.next<{ summary: DaemonChildSummary }>("done", 3_600_000);
    const t0 = performance.now();
    daemon.on("progress", (m) => o.onProgress?.({ settled: Number(m.settled), records: Number(m.records), queued: Number(m.queued), rssMiB: Number(m.rssMiB), s: (performance.now() - t0) / 1000 }));
    // stall guard: a run that makes no progress for 60 s ends with what it has
    let lastSettled = -1;
    let lastChange = performance.now();
    const guard = setInterval(() => {
      if (performance.now() - lastChange > 60_000) daemon.send({ type: "finish" });
    }, 5000);
    daemon.on("progress", (m) => {
      if (Number(m.settled) !== lastSettled) {
        lastSettled = Number(m.settled);
        lastChange = performance.now();
      }
    });
    const nats0 = procCpuSeconds(srv.pid);
    daemon.send({ type: "go" });
    const go = performance.now();
    await o.beforeFleet?.(srv.url);
    const fleetStartMs = performance.now() - go;
    const fleetOpts = benchFleet(srv.url, o.nodes);
    // both waiters before the start: a small fleet (no startup ramp) sends the two back to back
    const startedP = fleet.next<{ listeningMs: number }>("started", 120_000);
    const startupP = fleet.next<{ ms: number }>("startupComplete", 600_000);
    fleet.send({ type: "start", opts: fleetOpts });
    const started = await startedP;
    const startup = await startupP;
    const { summary } = await done;
    clearInterval(guard);
    const natsCpuS = procCpuSeconds(srv.pid) - nats0;
    fleet.send({ type: "report" });
    const rep = await fleet.next<{ totals: Record<string, unknown>; cpuS: number; rssMiB: number }>("report", 60_000);
    const wallMs = summary.lastSettledMs;
    const res: E2eResult = {
      nodes: o.nodes,
      mode: o.helper ? "helper" : "policy",
      arrival: o.arrival,
      wallMs,
      fleetStartMs,
      nodesPerMin: wallMs > 0 ? (summary.settled / wallMs) * 60_000 : 0,
      daemon: summary,
      fleet: { cpuS: rep.cpuS, rssMiB: rep.rssMiB, listeningMs: started.listeningMs, startupCompleteMs: startup.ms, totals: rep.totals },
      natsCpuS,
      provisionerCpuS: summary.cpuUserS + summary.cpuSystemS,
    };
    daemon.send({ type: "stop" });
    fleet.send({ type: "stop" });
    await Promise.all([daemon.exited, fleet.exited]);
    if (o.profileDir) {
      const profs = readdirSync(o.profileDir).filter((f) => f.endsWith(".cpuprofile")).sort();
      res.profile = profs.length ? join(o.profileDir, profs[profs.length - 1]) : undefined;
    }
    return res;
  } finally {
    daemon.proc.kill("SIGKILL");
    fleet.proc.kill("SIGKILL");
    await srv.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

export interface EssentialResult {
  nodes: number;
  done: number;
  failed: number;
  outcomes: Record<string, number>;
  /** ms from the fleet's start to the last node done */
  wallMs: number;
  nodesPerMin: number;
  provisionerCpuS: number;
  /** of provisionerCpuS: the main thread's and the other threads' */
  threadCpuS: { mainS: number; otherS: number };
  fleetCpuS: number;
  natsCpuS: number;
  /** protocol violations the fleet saw (none expected) */
  violations: number;
}

/**
 * The same fleet as runE2e, provisioned by the essential-work provisioner (essential-child.ts)
 * instead of the daemon: the most a provisioner reaches on this machine against this fleet.
 */
export async function runEssential(o: { nodes: number; caDir: string; workers?: number; profileDir?: string; execArgv?: string[]; loop?: EssentialRunOptions["loop"] }): Promise<EssentialResult> {
  const srv = await startNatsServer();
  const prov = spawnChild(benchFile("essential-child.ts"), [], ["--max-old-space-size=4096", ...(o.execArgv ?? []), ...(o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.profileDir}`] : [])]);
  const fleet = spawnChild(benchFile("fleet-child.ts"), [], ["--max-old-space-size=4096"]);
  try {
    const nats0 = procCpuSeconds(srv.pid);
    const startedP = fleet.next<{ listeningMs: number }>("started", 120_000);
    const startupP = fleet.next<{ ms: number }>("startupComplete", 600_000);
    fleet.send({ type: "start", opts: benchFleet(srv.url, o.nodes) });
    const started = await startedP;
    const doneP = prov.next<{ done: number; failed: number; firstError: string; outcomes: Record<string, number>; wallMs: number; cpuS: number; threadCpuS: { mainS: number; otherS: number } }>("done", 3_600_000);
    const identities = Array.from({ length: o.nodes }, (_, i) => identityOf(i));
    prov.send({ type: "run", o: { url: srv.url, caDir: o.caDir, policiesDir: join(REPO, "policies"), rulesDir: join(REPO, "rules"), token: TOKEN, identities, workers: o.workers ?? 200, loop: o.loop } satisfies EssentialRunOptions });
    const r = await doneP;
    const natsCpuS = procCpuSeconds(srv.pid) - nats0;
    await startupP;
    const repP = fleet.next<{ cpuS: number; totals: { violations: number } }>("report", 60_000);
    fleet.send({ type: "report" });
    const rep = await repP;
    if (r.failed > 0) throw new Error(`essential provisioner: ${r.failed} of ${o.nodes} nodes failed, first: ${r.firstError}`);
    // like runE2e's clock, from the fleet's start: its listening time counts too
    const wallMs = started.listeningMs + r.wallMs;
    prov.send({ type: "stop" });
    fleet.send({ type: "stop" });
    await Promise.all([prov.exited, fleet.exited]);
    return { nodes: o.nodes, done: r.done, failed: r.failed, outcomes: r.outcomes, wallMs, nodesPerMin: (r.done / wallMs) * 60_000, provisionerCpuS: r.cpuS, threadCpuS: r.threadCpuS, fleetCpuS: rep.cpuS, natsCpuS, violations: rep.totals.violations };
  } finally {
    prov.proc.kill("SIGKILL");
    fleet.proc.kill("SIGKILL");
    await srv.stop();
  }
}

export interface WaitingResult {
  nodes: number;
  queued: number;
  rssMiB: number;
  heapUsedMiB: number;
  rssAfterGcMiB: number;
  heapUsedAfterGcMiB: number;
  maxRssMiB: number;
  idleRssMiB: number;
  fillMs: number;
}

/** The daemon paused, a fleet of `nodes` announcing itself: every node waits in the queue. */
export async function runWaiting(o: { nodes: number; caDir: string }): Promise<WaitingResult> {
  const work = mkdtempSync(join(tmpdir(), "cp-bench-wait-"));
  const srv = await startNatsServer();
  const daemon = spawnChild(benchFile("daemon-child.ts"), [], ["--expose-gc"]);
  const fleet = spawnChild(benchFile("fleet-child.ts"), [], ["--max-old-space-size=4096"]);
  try {
    daemon.send({
      type: "start",
      cfg: { config: daemonConfig({ broker: srv.url, caDir: o.caDir, work }), env: { CHORIA_PROVISIONER_TOKEN: TOKEN }, logFile: join(work, "provisioner.log"), logLevel: "info", nodes: o.nodes, paused: true } satisfies DaemonChildConfig,
    });
    await daemon.next("ready", 60_000);
    daemon.send({ type: "status" });
    const idle = await daemon.next<{ rssMiB: number }>("status");
    const t0 = performance.now();
    fleet.send({ type: "start", opts: { servers: srv.url, nodes: o.nodes, seed: 1, token: TOKEN, startupRampMs: 0 } satisfies FleetOptions });
    await fleet.next("startupComplete", 600_000);
    // wait until every startup event is in the queue
    let st: { queued: number; rssMiB: number; heapUsedMiB: number; rssAfterGcMiB: number; heapUsedAfterGcMiB: number; maxRssMiB: number } | undefined;
    const deadline = performance.now() + 120_000;
    for (;;) {
      daemon.send({ type: "status" });
      st = await daemon.next("status");
      if (st!.queued >= o.nodes || performance.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const fillMs = performance.now() - t0;
    daemon.send({ type: "stop" });
    fleet.send({ type: "stop" });
    await Promise.all([daemon.exited, fleet.exited]);
    return { nodes: o.nodes, queued: st!.queued, rssMiB: st!.rssMiB, heapUsedMiB: st!.heapUsedMiB, rssAfterGcMiB: st!.rssAfterGcMiB, heapUsedAfterGcMiB: st!.heapUsedAfterGcMiB, maxRssMiB: st!.maxRssMiB, idleRssMiB: idle.rssMiB, fillMs };
  } finally {
    daemon.proc.kill("SIGKILL");
    fleet.proc.kill("SIGKILL");
    await srv.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

export interface RpcRate {
  shape: "ping" | "flow";
  rpcsPerSec: number;
  rpcs: number;
  window: number;
  clientCpuS: number;
  responderCpuS: number;
  natsCpuS: number;
  /** client + responder + nats-server CPU per call */
  cpuMsPerRpc: number;
  p50Ms: number;
  p99Ms: number;
}

/** The request data of one provisioning's four calls, as the daemon sends them (see flowRequests). */
export type FlowRequests = Array<{ agent: string; action: string; data: Record<string, unknown> }>;

/**
 * What the daemon sends a node with the shipped policies and the built-in CA: a real decision's
 * configuration and policies, a real certificate and CA, in the flow's order and field layout.
 */
export async function flowRequests(caDir: string): Promise<FlowRequests> {
  const ps = await loadPolicySet({ policiesDir: join(REPO, "policies"), rulesDir: join(REPO, "rules") });
  // the first sample inventory the shipped policy configures (others defer or shut down)
  let inv = inventories(1)[0]!;
  let d = await ps.evaluate(inv);
  for (const candidate of inventories(50)) {
    if (d.outcome === "configure") break;
    inv = candidate;
    d = await ps.evaluate(inv);
  }
  if (d.outcome !== "configure") throw new Error("no sample inventory is configured by the shipped policy");
  const ca = await openBuiltinCa(caDir, { workers: 1 });
  try {
    const [{ csrPem }] = await csrPool(1);
    const signed = await ca.sign({ identity: inv.identity, csrPem: csrPem!, profile: d.certificate });
    const token = { token: TOKEN };
    return [
      { agent: "rpcutil", action: "inventory", data: {} },
      { agent: "choria_provision", action: "gencsr", data: { cn: inv.identity, ...token } },
      {
        agent: "choria_provision",
        action: "configure",
        data: configureRequestData(d, { caPem: signed.caPem, certificatePem: signed.certificatePem, ssldir: "/etc/choria/ssl", token: TOKEN }),
      },
      { agent: "choria_provision", action: "restart", data: { splay: 1, ...token } },
    ];
  } finally {
    await ca.close();
  }
}

/**
 * NATS request/reply bound on loopback: the project's RpcClient (this process) against a
 * trivial responder (its own process), `window` calls in flight, each to a different identity.
 * With `flow`, each in-flight slot walks nodes through the four calls of a provisioning with
 * the flow's real request data, and the responder answers with the fleet's reply sizes.
 */
export async function measureRpcRate(o: { seconds?: number; window?: number; flow?: FlowRequests; watch?: boolean } = {}): Promise<RpcRate> {
  const srv = await startNatsServer();
  const shape = o.flow ? "flow" : "ping";
  const responder = spawnChild(benchFile("responder-child.ts"), [srv.url, shape]);
  const nc = await connectNats({ servers: srv.url, name: "bench-rpc-client" });
  const client = new RpcClient({ nc, identity: "provisioner.bench" });
  client.start();
  const calls: FlowRequests = o.flow ?? [{ agent: "rpcutil", action: "ping", data: {} }];
  try {
    await responder.next("ready", 60_000);
    const window = o.window ?? 256;
    const drive = async (ms: number): Promise<{ n: number; secs: number; lat: number[] }> => {
      const end = performance.now() + ms;
      const t0 = performance.now();
      let n = 0;
      const lat: number[] = [];
      await Promise.all(
        Array.from({ length: window }, async (_, w) => {
          let i = w;
          while (performance.now() < end) {
            const identity = `node${i % 50_000}.example.net`;
            // as the daemon: one reply watch per node's flow, its requests routed to it until the flow ends
            const watch = o.watch ? new ReplyWatch(identity) : undefined;
            for (const c of calls) {
              const s = performance.now();
              await client.call(identity, c.agent, c.action, c.data, { timeoutMs: 30_000, watch });
              lat.push(performance.now() - s);
              n++;
            }
            watch?.close();
            i += window;
          }
        }),
      );
      return { n, secs: (performance.now() - t0) / 1000, lat };
    };
    await drive(500); // warm-up
    responder.send({ type: "reset" });
    const nats0 = procCpuSeconds(srv.pid);
    const cpu0 = process.cpuUsage();
    const r = await drive((o.seconds ?? 3) * 1000);
    const c = process.cpuUsage(cpu0);
    const natsCpuS = procCpuSeconds(srv.pid) - nats0;
    responder.send({ type: "report" });
    const rep = await responder.next<{ cpuS: number }>("report");
    const lat = r.lat.sort((a, b) => a - b);
    const clientCpuS = (c.user + c.system) / 1e6;
    return {
      shape,
      rpcsPerSec: Math.round(r.n / r.secs),
      rpcs: r.n,
      window,
      clientCpuS,
      responderCpuS: rep.cpuS,
      natsCpuS,
      cpuMsPerRpc: ((clientCpuS + rep.cpuS + natsCpuS) * 1000) / Math.max(1, r.n),
      p50Ms: lat[Math.floor(lat.length * 0.5)] ?? 0,
      p99Ms: lat[Math.floor(lat.length * 0.99)] ?? 0,
    };
  } finally {
    await client.close();
    await nc.close();
    responder.send({ type: "stop" });
    await Promise.race([responder.exited, new Promise((r) => setTimeout(r, 2000))]);
    responder.proc.kill("SIGKILL");
    await srv.stop();
  }
}

/**
 * Legacy exec-helper decisions per second, the way the daemon runs them (helperDeciderFor: spawn,
 * JSON in, JSON out), `concurrency` in flight like the daemon's workers.
 */
export async function measureHelperRate(o: { helper: string; seconds?: number; concurrency?: number }): Promise<{ decisionsPerSec: number; decisions: number; concurrency: number; cpuS: number }> {
  const s = resolveSettings({ helper: o.helper, policies: join(REPO, "policies") }, {});
  const decider = helperDeciderFor(s, createMetrics("bench", { defaultMetrics: false }));
  const invs: Inventory[] = inventories(100);
  const concurrency = o.concurrency ?? 16;
  const run = async (ms: number): Promise<{ n: number; secs: number }> => {
    const end = performance.now() + ms;
    const t0 = performance.now();
    let n = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        let i = w;
        while (performance.now() < end) {
          const inv = invs[i % invs.length];
          const d = await decider.decide({ inventory: inv, rawInventory: { facts: inv.facts, agents: inv.agents, classes: [], collectives: inv.collectives, version: inv.version } });
          if (d.outcome !== "configure") throw new Error(`helper decided ${d.outcome}: ${d.reason}`);
          n++;
          i += concurrency;
        }
      }),
    );
    return { n, secs: (performance.now() - t0) / 1000 };
  };
  await run(300);
  const cpu0 = process.cpuUsage();
  const r = await run((o.seconds ?? 3) * 1000);
  const c = process.cpuUsage(cpu0);
  return { decisionsPerSec: Math.round(r.n / r.secs), decisions: r.n, concurrency, cpuS: (c.user + c.system) / 1e6 };
}
