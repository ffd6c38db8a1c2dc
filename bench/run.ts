/**
 * `npm run bench` (bench/main.ts): end-to-end provisioning throughput with PKI on,
 * the machine bounds measured in the same run, the legacy exec-helper mode side by side, and
 * the provisioner's RSS with a full queue. Writes one JSON file per run and summary.json under
 * bench/results/ (bench/results/quick/ with --quick), a plot, and prints a table.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { initBuiltinCa } from "../src/ca/index.js";
import { csrPool, measureSignRate } from "./ca.bench.js";
import { flowRequests, measureHelperRate, measureRpcRate, REPO, runE2e, runEssential, runWaiting, type E2eResult, type EssentialResult, type RpcRate } from "./e2e.js";
import { measureNodeWork } from "./node-work.js";
import { PHANTOM_GOAL_RATIO, phantomBench } from "./phantoms.bench.js";
import { checkGoal, machine, median, printResult, writeResult, type BenchResult } from "./harness.js";
import { measureEvalRate } from "./policy.bench.js";
import { formatProfile, summariseProfile } from "./profile-summary.js";
import { lineChartSvg } from "./svg.js";
import { referenceSection } from "./reference.js";
import { realServersSection } from "./real-servers.js";

/**
 * The exec-helper comparison uses the seed helper's decision written as users write helpers
 * (bench/legacy-helper.py). It runs under the system's own python3 when there is one: a
 * version manager's shim (pyenv) costs several times the interpreter's start-up and would
 * flatter the policy engine.
 */
function realisticHelper(dir: string): string {
  const system = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p));
  if (!system) return join(REPO, "bench/legacy-helper.py");
  const copy = join(dir, "legacy-helper.py");
  writeFileSync(copy, readFileSync(join(REPO, "bench/legacy-helper.py"), "utf8").replace(/^#!.*\n/, `#!${system}\n`), { mode: 0o755 });
  return copy;
}

export interface BenchOptions {
  nodes: number[];
  quick: boolean;
  /** fleet size for the exec-helper e2e run (0: skip it) */
  helperNodes: number;
  /** nodes waiting in the paused daemon's queue (0: skip) */
  waiting: number;
  /** fleet size for the arrival comparison: the same fleet with arrival tracking off, then on (0: skip) */
  arrivalNodes?: number;
  /** alternating pairs of the phantom comparison: a 500-node fleet without and with 2,000 phantom announcements (0: skip) */
  phantomPairs?: number;
  /** alternating pairs of the daemon and the essential-work provisioner on one fleet, for daemon_vs_essential (0: skip) */
  boundPairs?: number;
  /** alternating pairs of the arrival comparison (off and on) at arrivalNodes */
  arrivalPairs?: number;
  /** CPU-profile the provisioner during the largest e2e run and summarise it */
  profile: boolean;
  /** real go-choria servers for the head-to-head on real servers (0: skip) */
  realServers?: number;
  /** skip the machine-bound measurements */
  skipBounds?: boolean;
  outDir?: string;
  log?: (s: string) => void;
}

const r1 = (v: number): number => Math.round(v * 10) / 10;
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

function e2eResult(name: string, r: E2eResult, goal?: BenchResult["goal"]): BenchResult {
  const d = r.daemon;
  return {
    name,
    goal,
    metrics: {
      nodes: r.nodes,
      settled: d.settled,
      nodes_per_min: Math.round(r.nodesPerMin),
      wall_s: r3(r.wallMs / 1000),
      latency_p50_ms: r1(d.totalMs.p50),
      latency_p99_ms: r1(d.totalMs.p99),
      latency_max_ms: r1(d.totalMs.max),
      queued_p50_ms: Math.round(d.queuedMs.p50),
      queued_p99_ms: Math.round(d.queuedMs.p99),
      provisioner_cpu_s: r3(r.provisionerCpuS),
      provisioner_cpu_ms_per_node: r3((r.provisionerCpuS * 1000) / Math.max(1, d.settled)),
      provisioner_peak_rss_mib: r1(d.peakRssMiB),
      provisioner_max_rss_mib: r1(d.maxRssMiB),
      event_loop_delay_p99_ms: r1(d.eventLoopDelayMs.p99),
      event_loop_delay_max_ms: r1(d.eventLoopDelayMs.max),
      fleet_cpu_s: r3(r.fleet.cpuS),
      nats_cpu_s: r3(r.natsCpuS),
      rpcs_per_node: r3(d.rpcs / Math.max(1, d.settled)),
      signs_per_node: r3(d.signs / Math.max(1, d.settled)),
      ...Object.fromEntries(Object.entries(d.outcomes).map(([k, v]) => [`outcome_${k}`, v])),
      ...Object.fromEntries(Object.entries(d.arrivals ?? {}).map(([k, v]) => [`arrival_${k}`, v])),
      ...Object.fromEntries(Object.entries(d.stepMeansMs).map(([k, v]) => [`step_mean_ms_${k}`, v])),
    },
    notes: [
      `mode ${r.mode}; PKI on, built-in ECDSA P-256 CA, shipped policies/ and rules/; daemon defaults (workers, CA workers), log level info to a file, audit file on`,
      "fleet in its own process (sim, restartDelayMs 50, upgradable false so upgrade decisions configure), daemon in its own process, one nats-server on loopback",
      "nodes/min = nodes with a final record (configure, shutdown, defer, refused) / time from the fleet's start to the last of them",
      "latency = decision record durations.total (first RPC to last reply, not queue wait); queued = time waiting in the work queue",
      "provisioner CPU = process.cpuUsage() of the daemon process (main thread + CA worker threads) from the fleet's start to the last node",
      `fleet totals: ${JSON.stringify({ violations: r.fleet.totals.violations, configuredMoreThanOnce: r.fleet.totals.configuredMoreThanOnce, provisioned: r.fleet.totals.provisioned })}`,
      `load average at the end: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`,
    ],
  };
}

export async function runBench(o: BenchOptions): Promise<{ summary: Record<string, unknown>; allMet: boolean }> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const out = o.outDir ?? join(REPO, "bench/results", o.quick ? "quick" : "");
  mkdirSync(out, { recursive: true });
  const caDir = mkdtempSync(join(tmpdir(), "cp-bench-ca-"));
  const profDir = o.profile ? mkdtempSync(join(tmpdir(), "cp-bench-prof-")) : undefined;
  const REALISTIC_HELPER = realisticHelper(caDir);
  const results: BenchResult[] = [];
  const emit = (r: BenchResult): void => {
    writeResult(r, out);
    printResult(r);
    results.push(r);
  };
  const secs = o.quick ? 1 : 3;
  const started = performance.now();
  // the cores are shared with whatever else runs on the machine: record how busy it was
  const loadAtStart = loadavg().map((v) => +v.toFixed(2));
  try {
    await initBuiltinCa(caDir, { key: "ecdsa" });

    // ---- machine bounds, each alone on the machine
    let rpc, sign, evals, helper, helperFloor, nodeWork;
    // the bounds' inputs, made once and measured with again after the end-to-end runs
    let flow: Awaited<ReturnType<typeof flowRequests>> | undefined;
    let csrs: Awaited<ReturnType<typeof csrPool>> | undefined;
    if (!o.skipBounds) {
      const rpcMetrics = (r: RpcRate) => ({ rpcs_per_sec: r.rpcsPerSec, rpcs: r.rpcs, in_flight: r.window, p50_ms: r1(r.p50Ms), p99_ms: r1(r.p99Ms), client_cpu_s: r3(r.clientCpuS), responder_cpu_s: r3(r.responderCpuS), nats_cpu_s: r3(r.natsCpuS), cpu_ms_per_rpc: r3(r.cpuMsPerRpc) });
      log("bound: NATS request/reply, provisioning-shaped messages (RpcClient vs a trivial responder)...");
      flow = await flowRequests(caDir);
      rpc = await measureRpcRate({ seconds: secs, flow });
      emit({ name: "bound-rpc", metrics: rpcMetrics(rpc), notes: ["project RpcClient (v1 codec, one reply subscription) in the bench process, a trivial responder (decode request, encode reply) in its own process, one nats-server", "each in-flight slot walks nodes through inventory, gencsr, configure, restart with the daemon's real request data (shipped policy decision, built-in CA certificate) and the fleet's reply sizes (its facts, a real CSR)"] });
      log("bound: NATS request/reply, empty pings (for reference)...");
      const ping = await measureRpcRate({ seconds: secs });
      emit({ name: "bound-rpc-ping", metrics: rpcMetrics(ping), notes: ["as bound-rpc with rpcutil#ping and empty data both ways: the smallest Choria messages, not this workload's"] });
      log("bound: CSR verify + sign (built-in ECDSA CA, worker pool)...");
      csrs = await csrPool(o.quick ? 40 : 100);
      sign = await measureSignRate({ key: "ecdsa", seconds: secs, csrs });
      emit({ name: "bound-sign", metrics: { signs_per_sec: sign.signsPerSec, signs: sign.signs, workers: sign.workers, p50_ms: r1(sign.p50Ms), p99_ms: r1(sign.p99Ms), cpu_ms_per_sign: r3(sign.cpuMsPerSign) }, notes: ["bench/ca.bench.ts logic: RSA-2048 node CSRs, ECDSA P-256 CA, one worker per core (measured alone on the machine; the daemon keeps one core for its event loop), 256 in flight"] });
      log("bound: policy evaluations...");
      evals = await measureEvalRate({ seconds: secs, policiesDir: join(REPO, "policies"), rulesDir: join(REPO, "rules") });
      emit({ name: "bound-eval", metrics: { evals_per_sec: evals.evalsPerSec, evals: evals.evals, rules: evals.rules, concurrency: evals.concurrency }, notes: [`bench/policy.bench.ts logic: policy ${evals.policy}, 1000 varied inventories, one core`] });
      log("bound: node-side work (RSA-2048 CSR signature, delivered certificate check)...");
      nodeWork = await measureNodeWork({ caDir, seconds: secs });
      emit({ name: "bound-node-work", metrics: { nodes_per_sec: nodeWork.nodesPerSec, nodes: nodeWork.nodes, cpu_ms_per_node: r3(nodeWork.cpuMsPerNode), threads: nodeWork.threads }, notes: ["bench/node-work.ts: what each simulated node computes itself: its CSR signed with its RSA-2048 key (gencsr) and the checks of the certificate it is sent (configure); one thread like the simulator"] });
      log("bound: legacy exec helper decisions...");
      // the seed's decision as users of the reference write it (JSON parsing, per-country brokers)
      helper = await measureHelperRate({ helper: REALISTIC_HELPER, seconds: secs });
      emit({ name: "bound-helper", metrics: { decisions_per_sec: helper.decisionsPerSec, decisions: helper.decisions, concurrency: helper.concurrency, cpu_ms_per_decision: r3((helper.cpuS * 1000) / Math.max(1, helper.decisions)) }, notes: ["helperDecider (the daemon's exec mode) running bench/legacy-helper.py: the seed helper's decision (parse request and inventory, brokers by country, registration and PKI settings), standard library only"] });
      // and the floor: a helper that does nothing but answer (sh builtins, fixed output)
      helperFloor = await measureHelperRate({ helper: join(REPO, "bench/legacy-helper.sh"), seconds: secs });
      emit({ name: "bound-helper-floor", metrics: { decisions_per_sec: helperFloor.decisionsPerSec, decisions: helperFloor.decisions, concurrency: helperFloor.concurrency, cpu_ms_per_decision: r3((helperFloor.cpuS * 1000) / Math.max(1, helperFloor.decisions)) }, notes: ["bench/legacy-helper.sh: sh builtins only, fixed configuration, no JSON parsing: the cheapest helper possible"] });
    }

    // ---- end to end, policy engine
    const e2e: Array<{ n: number; r: E2eResult }> = [];
    const largest = Math.max(...o.nodes);
    for (const n of o.nodes) {
      log(`e2e: ${n} nodes, policy engine...`);
      const r = await runE2e({ nodes: n, caDir, profileDir: o.profile && n === largest ? profDir : undefined, onProgress: (p) => log(`  ${p.s.toFixed(0)}s settled ${p.settled} queued ${p.queued} rss ${p.rssMiB.toFixed(0)} MiB`) });
      e2e.push({ n, r });
      emit(e2eResult(`e2e-${n / 1000}k`, r, { metric: "nodes_per_min", min: 30_000 }));
      if (r.profile) {
        const s = summariseProfile(r.profile, 30);
        writeFileSync(join(out, `e2e-${n / 1000}k-profile.json`), JSON.stringify(s, null, 2) + "\n");
        log(formatProfile(s));
      }
    }

    // ---- the same largest fleet, provisioned with the essential work only (essential-child.ts):
    // what any provisioner could reach here, so the daemon's own overhead can be read off
    let essential: EssentialResult | undefined;
    if (!o.skipBounds && o.nodes.length) {
      log(`e2e: ${largest} nodes, essential-work provisioner (the reference point)...`);
      essential = await runEssential({ nodes: largest, caDir });
      emit({
        name: `e2e-essential-${largest / 1000}k`,
        metrics: { nodes: essential.nodes, done: essential.done, nodes_per_min: Math.round(essential.nodesPerMin), wall_s: r3(essential.wallMs / 1000), provisioner_cpu_ms_per_node: r3((essential.provisionerCpuS * 1000) / essential.done), fleet_cpu_s: r3(essential.fleetCpuS), nats_cpu_s: r3(essential.natsCpuS), ...Object.fromEntries(Object.entries(essential.outcomes).map(([k, v]) => [`outcome_${k}`, v])) },
        notes: ["bench/essential-child.ts against the same fleet: per node only inventory, gencsr, the shipped policy's decision, CSR parse + signature check, built-in CA signing, configure and restart (or shutdown), 200 in flight; no intake, queue, records, audit, logs, metrics, CSR policy or retries"],
      });
    }

    // ---- the daemon's distance to the essential work, as alternating pairs on one fleet: a single
    // run of each, minutes apart, moved this ratio by 0.1 on this shared machine
    let essentialPairs: { nodes: number; ratios: number[]; median: number; daemonCpuMs: number[]; essentialCpuMs: number[]; flowRatios: number[]; flowMedian: number; flowCpuMs: number[] } | undefined;
    if (!o.skipBounds && (o.boundPairs ?? 0) > 0 && o.nodes.length) {
      const n = Math.min(largest, 10_000);
      const ratios: number[] = [];
      const flowRatios: number[] = [];
      const daemonCpuMs: number[] = [];
      const essentialCpuMs: number[] = [];
      const flowCpuMs: number[] = [];
      const cpuMs = (r: EssentialResult) => r3((r.provisionerCpuS * 1000) / Math.max(1, r.done));
      const threads = (t: { mainS: number; otherS: number }) => `main ${t.mainS} s, other threads ${t.otherS} s`;
      for (let i = 0; i < o.boundPairs!; i++) {
        log(`daemon vs essential work: pair ${i + 1} of ${o.boundPairs}, ${n} nodes (with the daemon's flow alone between them)...`);
        const d = await runE2e({ nodes: n, caDir });
        const f = await runEssential({ nodes: n, caDir, loop: "daemon-flow" });
        const e = await runEssential({ nodes: n, caDir });
        ratios.push(d.nodesPerMin / e.nodesPerMin);
        flowRatios.push(f.nodesPerMin / e.nodesPerMin);
        daemonCpuMs.push(r3((d.provisionerCpuS * 1000) / Math.max(1, d.daemon.settled)));
        flowCpuMs.push(cpuMs(f));
        essentialCpuMs.push(cpuMs(e));
        log(`  daemon ${Math.round(d.nodesPerMin)}/min (${daemonCpuMs[i]} CPU-ms/node: ${threads(d.daemon.threadCpuS)}), its flow alone ${Math.round(f.nodesPerMin)}/min (${flowCpuMs[i]}: ${threads(f.threadCpuS)}), essential ${Math.round(e.nodesPerMin)}/min (${essentialCpuMs[i]}: ${threads(e.threadCpuS)}) -> ${r3(ratios[i]!)}, flow alone ${r3(flowRatios[i]!)}`);
      }
      essentialPairs = { nodes: n, ratios: ratios.map(r3), median: r3(median(ratios)), daemonCpuMs, essentialCpuMs, flowRatios: flowRatios.map(r3), flowMedian: r3(median(flowRatios)), flowCpuMs };
      emit({
        name: "daemon-vs-essential",
        metrics: { nodes: n, pairs: ratios.length, median_ratio: essentialPairs.median, min_ratio: r3(Math.min(...ratios)), max_ratio: r3(Math.max(...ratios)), flow_alone_median_ratio: essentialPairs.flowMedian },
        notes: [
          `alternating runs on the same ${n}-node fleet: the daemon (runE2e), the daemon's per-node flow alone (runEssential with loop "daemon-flow": provisionNode in the essential-work loop, without the daemon's intake, queue, registry, records, audit, logs, metrics and ledger), then the essential-work provisioner (runEssential); ratio = nodes/min / the essential work's nodes/min`,
          `ratios ${JSON.stringify(essentialPairs.ratios)}, the flow alone ${JSON.stringify(essentialPairs.flowRatios)}; provisioner CPU-ms per node, daemon ${JSON.stringify(daemonCpuMs)}, flow alone ${JSON.stringify(flowCpuMs)}, essential ${JSON.stringify(essentialCpuMs)}`,
        ],
      });
    }

    // ---- the bounds again, right after the end-to-end runs: this VM's speed drifts by several
    // percent over minutes, so the bound is the mean of a measurement on each side of them
    let after: { rpc: RpcRate; sign: Awaited<ReturnType<typeof measureSignRate>>; evals: Awaited<ReturnType<typeof measureEvalRate>>; nodeWork: Awaited<ReturnType<typeof measureNodeWork>> } | undefined;
    if (rpc && sign && evals && nodeWork && flow && csrs) {
      log("bounds again after the end-to-end runs (RPC, sign, eval, node work)...");
      after = {
        rpc: await measureRpcRate({ seconds: secs, flow }),
        sign: await measureSignRate({ key: "ecdsa", seconds: secs, csrs }),
        evals: await measureEvalRate({ seconds: secs, policiesDir: join(REPO, "policies"), rulesDir: join(REPO, "rules") }),
        nodeWork: await measureNodeWork({ caDir, seconds: secs }),
      };
      emit({
        name: "bounds-after",
        metrics: { rpc_cpu_ms_per_rpc: r3(after.rpc.cpuMsPerRpc), rpcs_per_sec: after.rpc.rpcsPerSec, sign_cpu_ms_per_sign: r3(after.sign.cpuMsPerSign), evals_per_sec: after.evals.evalsPerSec, node_work_cpu_ms_per_node: r3(after.nodeWork.cpuMsPerNode) },
        notes: ["bound-rpc, bound-sign, bound-eval and bound-node-work measured again after the end-to-end runs; the summary's bound uses the mean of both"],
      });
    }

    // ---- the same fleet decided by the legacy exec helper
    let helperE2e: E2eResult | undefined;
    if (o.helperNodes > 0) {
      log(`e2e: ${o.helperNodes} nodes, legacy exec helper...`);
      helperE2e = await runE2e({ nodes: o.helperNodes, caDir, helper: REALISTIC_HELPER, onProgress: (p) => log(`  ${p.s.toFixed(0)}s settled ${p.settled}`) });
      emit(e2eResult(`e2e-helper-${o.helperNodes / 1000}k`, helperE2e));
    }

    // ---- the real reference provisioner on the smallest fleet, when CHORIA_REFERENCE_PROVISIONER names it
    const refNodes = Math.min(...o.nodes);
    const reference = o.nodes.length
      ? await referenceSection({ nodes: refNodes, caDir, ours: e2e.find((x) => x.n === refNodes)?.r, sweepNodes: o.quick ? 500 : undefined, outDir: out, log })
      : { summary: { measured: false, reason: "no end-to-end fleet in this run (--nodes)" }, goals: {}, series: [] };

    // ---- real go-choria servers, ours and the reference with helper (a): when the real go-choria
    // builds here (scripts/build-real-choria.mjs) and, for the reference, CHORIA_REFERENCE_PROVISIONER names it
    // (a failure there is reported in summary.json, not allowed to lose the other results)
    const realServers = o.realServers
      ? await realServersSection({ servers: o.realServers, outDir: out, log }).catch((e: Error) => {
          log(`real servers: failed: ${e.stack ?? e.message}`);
          return { measured: false, reason: `failed: ${e.message}` };
        })
      : { measured: false, reason: "--real-servers 0" };

    // ---- arrival tracking's cost: the same fleet, every broker set at the bench's broker, tracking
    // off and on in alternating pairs (the order flipping each pair): one pair moved the cost from 1% to 15% here
    let arrivalPair: { off: E2eResult; on: E2eResult; costs: number[]; median: number } | undefined;
    if ((o.arrivalNodes ?? 0) > 0) {
      const n = o.arrivalNodes!;
      const pairs = Math.max(1, o.arrivalPairs ?? 1);
      const costs: number[] = [];
      const runs: Partial<Record<"off" | "on", E2eResult>> = {};
      for (let i = 0; i < pairs; i++) {
        for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
          log(`e2e: ${n} nodes, arrival tracking ${on ? "on" : "off"} (pair ${i + 1} of ${pairs})...`);
          runs[on ? "on" : "off"] = await runE2e({ nodes: n, caDir, arrival: on, onProgress: (p) => log(`  ${p.s.toFixed(0)}s settled ${p.settled}`) });
        }
        costs.push(1 - runs.on!.nodesPerMin / runs.off!.nodesPerMin);
        log(`  pair ${i + 1}: ${Math.round(runs.off!.nodesPerMin)}/min off, ${Math.round(runs.on!.nodesPerMin)}/min on -> cost ${r3(costs[i]!)}`);
      }
      // the last pair's runs stand for the comparison's details
      for (const on of [false, true]) {
        const res = e2eResult(`e2e-arrival-${on ? "on" : "off"}-${n / 1000}k`, runs[on ? "on" : "off"]!);
        res.notes = [...(res.notes ?? []), `arrival comparison: the shipped policies with every broker set pointed at the bench's nats-server, so restarted nodes arrive there; arrival tracking ${on ? "on (arrival: {deadline: 2m}, rollout trust_initial, each broker set watched on its own brokers)" : "off"}; the last of ${pairs} alternating pairs, costs ${JSON.stringify(costs.map(r3))}`];
        emit(res);
      }
      arrivalPair = { off: runs.off!, on: runs.on!, costs: costs.map(r3), median: median(costs) };
    }

    // ---- phantom announcements' cost: a fleet without and with them, alternating (phantoms.bench.ts)
    let phantoms: BenchResult | undefined;
    if ((o.phantomPairs ?? 0) > 0) {
      log(`phantoms: ${o.phantomPairs} pairs of a 500-node fleet without and with 2,000 phantom announcements...`);
      phantoms = await phantomBench({ pairs: o.phantomPairs!, nodes: 500, phantoms: 2000, caDir, log: (l) => log(`  ${l}`) });
      emit(phantoms);
    }

    // ---- RSS with every node waiting
    let waiting;
    if (o.waiting > 0) {
      log(`waiting: ${o.waiting} nodes queued in a paused daemon...`);
      waiting = await runWaiting({ nodes: o.waiting, caDir });
      emit({
        name: `waiting-${o.waiting / 1000}k`,
        goal: { metric: "rss_mib", max: 400 },
        metrics: { nodes: waiting.nodes, queued: waiting.queued, rss_mib: r1(waiting.rssMiB), rss_after_gc_mib: r1(waiting.rssAfterGcMiB), heap_used_mib: r1(waiting.heapUsedMiB), heap_used_after_gc_mib: r1(waiting.heapUsedAfterGcMiB), max_rss_mib: r1(waiting.maxRssMiB), idle_rss_mib: r1(waiting.idleRssMiB), fill_s: r3(waiting.fillMs / 1000) },
        notes: ["daemon paused (provisioner.pause()) before a fleet of this size publishes its startup events; RSS of the daemon process once every node is in the queue (before and after a forced GC)"],
      });
    }

    // ---- summary against the goals
    const big = e2e.find((x) => x.n === largest)?.r;
    const goals: Record<string, { value: number | null; goal: string; met: boolean | null; note?: string }> = {};
    if (big) goals.e2e_nodes_per_min = { value: Math.round(big.nodesPerMin), goal: ">= 30000", met: big.nodesPerMin >= 30_000, note: `${largest} nodes` };
    let bound: Record<string, number> | undefined;
    if (big && rpc && sign && evals && nodeWork) {
      const settled = Math.max(1, big.daemon.settled);
      const rpn = big.daemon.rpcs / settled;
      const spn = big.daemon.signs / settled;
      const dpn = big.daemon.decisions / settled;
      const cores = availableParallelism();
      // CPU milliseconds per node that the work itself needs, each measured alone on the machine
      // each measurement as the four rates the bound is made of; the bound takes the mean of before and after
      type Rates = { rpcMs: number; rpcsPerSec: number; signMs: number; signsPerSec: number; evalsPerSec: number; nodeMs: number };
      const rates = (m: { rpc: RpcRate; sign: NonNullable<typeof sign>; evals: NonNullable<typeof evals>; nodeWork: NonNullable<typeof nodeWork> }): Rates => ({
        rpcMs: m.rpc.cpuMsPerRpc, rpcsPerSec: m.rpc.rpcsPerSec, signMs: m.sign.cpuMsPerSign, signsPerSec: m.sign.signsPerSec, evalsPerSec: m.evals.evalsPerSec, nodeMs: m.nodeWork.cpuMsPerNode,
      });
      const before = rates({ rpc, sign, evals, nodeWork });
      const afterRates = after ? rates(after) : undefined;
      const used: Rates = afterRates ? (Object.fromEntries(Object.entries(before).map(([k, v]) => [k, (v + afterRates[k as keyof Rates]) / 2])) as Rates) : before;
      const parts = (r: Rates) => ({ rpc: rpn * r.rpcMs, sign: spn * r.signMs, eval: (dpn * 1000) / r.evalsPerSec, node: spn * r.nodeMs });
      const sum = (c: ReturnType<typeof parts>): number => c.rpc + c.sign + c.eval + c.node;
      const cpu = parts(used);
      const capacity = (ms: number): number => (cores * 60_000) / ms;
      const machineBound = capacity(sum(cpu));
      const provisionerSide = capacity(cpu.rpc + cpu.sign + cpu.eval);
      const perMin = { rpc: (used.rpcsPerSec / rpn) * 60, sign: (used.signsPerSec / spn) * 60, eval: (used.evalsPerSec / dpn) * 60 };
      const slowest = Math.min(perMin.rpc, perMin.sign, perMin.eval);
      const e2eCpuMs = ((big.provisionerCpuS + big.fleet.cpuS + big.natsCpuS) * 1000) / settled;
      bound = {
        rpcs_per_node: r3(rpn),
        signs_per_node: r3(spn),
        decisions_per_node: r3(dpn),
        cpu_ms_per_node_rpc: r3(cpu.rpc),
        cpu_ms_per_node_sign: r3(cpu.sign),
        cpu_ms_per_node_eval: r3(cpu.eval),
        cpu_ms_per_node_node_work: r3(cpu.node),
        cpu_ms_per_node_e2e: r3(e2eCpuMs),
        machine_nodes_per_min: Math.round(machineBound),
        provisioner_side_nodes_per_min: Math.round(provisionerSide),
        rpc_nodes_per_min: Math.round(perMin.rpc),
        sign_nodes_per_min: Math.round(perMin.sign),
        eval_nodes_per_min: Math.round(perMin.eval),
        slowest_resource_nodes_per_min: Math.round(slowest),
        ...(essential ? { essential_provisioner_nodes_per_min: Math.round(essential.nodesPerMin), essential_provisioner_share: r3(essential.nodesPerMin / machineBound), daemon_vs_essential_single_largest: r3(big.nodesPerMin / essential.nodesPerMin) } : {}),
        // the goal's figure: the median of the alternating pairs (above)
        ...(essentialPairs ? { daemon_vs_essential: essentialPairs.median, daemon_flow_alone_vs_essential: essentialPairs.flowMedian } : {}),
        // essential CPU per node measured after the end-to-end runs relative to before: how far the machine drifted
        ...(afterRates ? { drift_after_vs_before: r3(sum(parts(afterRates)) / sum(parts(before))) } : {}),
      };
      const f = big.nodesPerMin / machineBound;
      goals.fraction_of_bound = {
        value: r3(f),
        goal: ">= 0.7 of the machine bound",
        met: f >= 0.7,
        note: `bound ${Math.round(machineBound)} nodes/min = ${cores} cores / ${r3(sum(cpu))} CPU-ms per node (RPC ${r3(cpu.rpc)}, sign ${r3(cpu.sign)}, eval ${r3(cpu.eval)}, node work ${r3(cpu.node)}); e2e spent ${r3(e2eCpuMs)} (provisioner ${r3((big.provisionerCpuS * 1000) / settled)}, fleet ${r3((big.fleet.cpuS * 1000) / settled)}, nats-server ${r3((big.natsCpuS * 1000) / settled)}). ${essential ? `The essential-work provisioner against the same fleet: ${Math.round(essential.nodesPerMin)}/min -> ${r3(essential.nodesPerMin / machineBound)} of the bound; the daemon reaches ${r3(big.nodesPerMin / essential.nodesPerMin)} of it. ` : ""}Bound if the nodes' own work were not on this machine: ${Math.round(provisionerSide)}/min -> ${r3(big.nodesPerMin / provisionerSide)}; slowest single resource (${Object.entries(perMin).sort((a, b) => a[1] - b[1])[0]![0]}) ${Math.round(slowest)}/min -> ${r3(big.nodesPerMin / slowest)}`,
      };
    }
    if (essentialPairs)
      goals.daemon_vs_essential = {
        value: essentialPairs.median,
        goal: ">= 0.9 of the essential-work provisioner's nodes/min",
        met: essentialPairs.median >= 0.9,
        note: `median of ${essentialPairs.ratios.length} alternating pairs at ${essentialPairs.nodes} nodes: ${essentialPairs.ratios.join(", ")}; provisioner CPU-ms per node, daemon ${essentialPairs.daemonCpuMs.join(", ")} against ${essentialPairs.essentialCpuMs.join(", ")}; the daemon's per-node flow alone, in the same rounds: ${essentialPairs.flowMedian} of the essential work (CPU-ms per node ${essentialPairs.flowCpuMs.join(", ")})`,
      };
    if (evals && helper)
      goals.policy_vs_helper = {
        value: r1(evals.evalsPerSec / helper.decisionsPerSec),
        goal: ">= 100x decisions/s",
        met: evals.evalsPerSec / helper.decisionsPerSec >= 100,
        note: `${evals.evalsPerSec}/s vs ${helper.decisionsPerSec}/s (seed-equivalent helper)${helperFloor ? `; against a do-nothing sh helper (${helperFloor.decisionsPerSec}/s): ${r1(evals.evalsPerSec / helperFloor.decisionsPerSec)}x` : ""}`,
      };
    if (arrivalPair) {
      goals.arrival_tracking_cost = {
        value: r3(arrivalPair.median),
        goal: "<= 0.05 (within 5% of off)",
        met: arrivalPair.median <= 0.05,
        note: `${o.arrivalNodes} nodes, median of ${arrivalPair.costs.length} alternating pairs' costs ${JSON.stringify(arrivalPair.costs)}; the last pair ${Math.round(arrivalPair.on.nodesPerMin)}/min with arrival tracking vs ${Math.round(arrivalPair.off.nodesPerMin)}/min without, arrived ${arrivalPair.on.daemon.arrivals?.arrived ?? 0} by the end of its run`,
      };
    }
    if (phantoms) {
      const ratio = phantoms.metrics.slowdown_ratio!;
      goals.phantom_slowdown = { value: ratio, goal: `<= ${PHANTOM_GOAL_RATIO}`, met: ratio <= PHANTOM_GOAL_RATIO, note: `a 500-node fleet with 2,000 phantom announcements published just before it, against without: median of ${phantoms.metrics.pairs} alternating pairs' ratios` };
    }
    if (waiting) goals.rss_100k_waiting_mib = { value: r1(waiting.rssMiB), goal: "< 400 MiB", met: waiting.rssMiB < 400, note: `${waiting.queued} nodes queued` };
    Object.assign(goals, reference.goals);
    const comparison =
      helperE2e && e2e.length
        ? {
            helper_nodes: helperE2e.nodes,
            helper_e2e_nodes_per_min: Math.round(helperE2e.nodesPerMin),
            policy_e2e_nodes_per_min: Math.round(e2e[0].r.nodesPerMin),
            policy_nodes: e2e[0].n,
            helper_mean_decision_ms: helperE2e.daemon.stepMeansMs.policy,
            policy_mean_decision_ms: e2e[0].r.daemon.stepMeansMs.policy,
          }
        : undefined;

    const summary = {
      at: new Date().toISOString(),
      machine: machine(),
      options: o.quick ? "quick" : "full",
      duration_s: Math.round((performance.now() - started) / 1000),
      load_average: { at_start: loadAtStart, at_end: loadavg().map((v) => +v.toFixed(2)) },
      goals,
      bound,
      bound_definition:
        "machine bound = the machine's cores / the CPU time one node's essential work needs, each part measured alone on the machine in the same run, before and after the end-to-end runs (the mean of the two): RPCs/node x CPU per call of the loopback NATS request/reply bound (project RpcClient vs a trivial responder, provisioning-shaped messages; client + responder + nats-server CPU), signs/node x CPU per CSR verify+sign (built-in CA pool), decisions/node x CPU per policy evaluation (one core), and the nodes' own work (RSA-2048 CSR signature and certificate check, which the simulated fleet does on this machine). Also reported: the same without the nodes' own work, and the slowest single resource's rate at full machine (which assumes the others cost nothing)",
      helper_e2e_comparison: comparison,
      reference: reference.summary,
      real_servers: realServers,
      results: Object.fromEntries(results.map((r) => [r.name, { ...r.metrics, goalMet: checkGoal(r) }])),
    };
    writeFileSync(join(out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");

    const series = e2e.map(({ n, r }) => {
      let cum = 0;
      const pts: Array<[number, number]> = [[0, 0]];
      r.daemon.bins.forEach((c, i) => {
        cum += c;
        pts.push([((i + 1) * r.daemon.binMs) / 1000, cum]);
      });
      return { label: `${n.toLocaleString("en-US")} nodes, policy engine: ${Math.round(r.nodesPerMin).toLocaleString("en-US")}/min`, points: pts };
    });
    if (helperE2e) {
      let cum = 0;
      const pts: Array<[number, number]> = [[0, 0]];
      helperE2e.daemon.bins.forEach((c, i) => {
        cum += c;
        pts.push([((i + 1) * helperE2e!.daemon.binMs) / 1000, cum]);
      });
      series.push({ label: `${helperE2e.nodes.toLocaleString("en-US")} nodes, exec helper: ${Math.round(helperE2e.nodesPerMin).toLocaleString("en-US")}/min`, points: pts });
    }
    series.push(...reference.series);
    if (series.length) {
      writeFileSync(
        join(out, "provisioned-over-time.svg"),
        lineChartSvg({
          title: "Nodes provisioned over time (PKI on, simulated fleet, 2-core machine)",
          xLabel: "seconds since the fleet started",
          yLabel: "nodes with a final decision record",
          series,
          notes: [`${new Date().toISOString().slice(0, 16)}Z, ${machine().cpus} cores ${String(machine().cpuModel)}, node ${process.version}; fleet, daemon and nats-server share the cores`],
        }),
      );
    }

    process.stdout.write("\ngoal                          value         goal                                   met\n");
    for (const [k, g] of Object.entries(goals)) process.stdout.write(`${k.padEnd(29)} ${String(g.value).padEnd(13)} ${g.goal.padEnd(38)} ${g.met ? "yes" : "NO"}${g.note ? `  (${g.note})` : ""}\n`);
    process.stdout.write(`\nresults in ${out}\n`);
    return { summary, allMet: Object.values(goals).every((g) => g.met) };
  } finally {
    rmSync(caDir, { recursive: true, force: true });
  }
}
