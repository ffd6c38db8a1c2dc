/**
 * The essential-work provisioner: the reference point for the daemon in `npm run bench`. It does
 * per node only what provisioning needs, with the project's own parts (RpcClient, the shipped
 * policy set, parseCsr, the built-in CA pool): inventory, gencsr, the policy decision, CSR parse
 * and self-signature check, signing, configure and restart (or shutdown). None of the daemon's
 * intake, queue, records, audit log, log lines, metrics, CSR policy, retries or timeouts beyond
 * one per call. Its nodes/min against the same simulated fleet is the most a provisioner could
 * reach on this machine with this fleet, so the daemon's distance to it is its own overhead.
 *
 * With `loop: "daemon-flow"` the same loop takes each node through the daemon's own per-node
 * flow instead (provisionNode with its default options, CSR policy and reply watch, an abort
 * signal per node; no metrics, registry, audit, logs or ledger): the point between the two that
 * splits the daemon's distance into what the flow costs and what the daemon does around it.
 *
 *   parent -> {type:"run", o}   child -> {type:"done", done, failed, outcomes, wallMs, cpuS, threadCpuS}
 */
import "./orphan-exit.js";
import { connectNats, RpcClient } from "../src/transport/index.js";
import { openBuiltinCa } from "../src/ca/index.js";
import { parseCsr } from "../src/ca/csr-inspect.js";
import { loadPolicySet } from "../src/policy/index.js";
import { inventoryFromRpcutil, type RpcutilInventoryData } from "../src/types/index.js";
import { configureRequestData, provisionNode } from "../src/provision/flow.js";
import { defaultFlowOptions } from "../src/provision/flow-options.js";
import { policyDecider } from "../src/policy/deciders.js";
import { csrChecker } from "../src/ca/index.js";
import { ReplyWatch } from "../src/transport/index.js";
import { threadCpu, threadCpuSince } from "./thread-cpu.js";

export interface EssentialRunOptions {
  url: string;
  caDir: string;
  policiesDir: string;
  rulesDir: string;
  token: string;
  identities: string[];
  workers: number;
  /** "essential" (the default): the steps below; "daemon-flow": the daemon's provisionNode */
  loop?: "essential" | "daemon-flow";
}

const ignore = (): void => undefined;
const quietObserver = { rpcTime: ignore, rpcError: ignore, policyEvaluated: ignore, csrRefused: ignore, jwtRefused: ignore, signed: ignore, signFailed: ignore, lockHeld: ignore };

async function run(o: EssentialRunOptions): Promise<void> {
  const ps = await loadPolicySet({ policiesDir: o.policiesDir, rulesDir: o.rulesDir });
  const ca = await openBuiltinCa(o.caDir);
  const nc = await connectNats({ servers: [o.url], name: "bench-essential" });
  const rpc = new RpcClient({ nc, identity: "provisioner.essential" });
  rpc.start();
  const tok = { token: o.token };
  const call = { timeoutMs: 20_000 };
  const outcomes: Record<string, number> = {};
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError = "";
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpu();
  const t0 = performance.now();
  const flowOptions = { ...defaultFlowOptions(), token: o.token };
  const flowDeps = { rpc, decider: policyDecider(ps), signer: ca, csr: csrChecker(), observer: quietObserver };
  const daemonFlow = async (id: string): Promise<void> => {
    // closed by provisionNode when the flow ends
    const r = await provisionNode(id, flowDeps, flowOptions, new AbortController().signal, new ReplyWatch(id));
    outcomes[r.record.outcome] = (outcomes[r.record.outcome] ?? 0) + 1;
    if (r.record.outcome === "error" || r.record.outcome === "refused") throw new Error(r.record.reason);
  };
  const essential = async (id: string): Promise<void> => {
    const inv = await rpc.call<RpcutilInventoryData>(id, "rpcutil", "inventory", {}, call);
    const g = await rpc.call<{ csr: string; ssldir?: string }>(id, "choria_provision", "gencsr", { cn: id, ...tok }, call);
    const parsed = parseCsr(g.data.csr);
    const d = await ps.evaluate(inventoryFromRpcutil(id, inv.data, { csr: parsed.summary }));
    outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
    if (d.outcome === "shutdown") {
      await rpc.call(id, "choria_provision", "shutdown", tok, call);
      return;
    }
    if (d.outcome === "defer") return;
    const signed = await ca.sign({ identity: id, csrPem: g.data.csr, profile: d.certificate, checked: parsed });
    const data = configureRequestData(d, { caPem: signed.caPem, certificatePem: signed.certificatePem, ssldir: g.data.ssldir, token: o.token });
    const c = await rpc.call(id, "choria_provision", "configure", data, call);
    if (c.statuscode !== 0) throw new Error(`configure: ${c.statusmsg}`);
    await rpc.call(id, "choria_provision", "restart", { splay: 1, ...tok }, call);
  };
  const one = o.loop === "daemon-flow" ? daemonFlow : essential;
  const worker = async (): Promise<void> => {
    while (next < o.identities.length) {
      const id = o.identities[next++]!;
      try {
        await one(id);
        done++;
      } catch (e) {
        failed++;
        firstError ||= `${id}: ${(e as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  process.send?.({ type: "done", done, failed, firstError, outcomes, wallMs, cpuS: (c.user + c.system) / 1e6, threadCpuS: threadCpuSince(threads0) });
  await rpc.close();
  await nc.close();
  await ca.close();
}

process.on("message", (m: { type: string; o?: EssentialRunOptions }) => {
  if (m.type === "run") {
    run(m.o!).catch((e: Error) => {
      process.send?.({ type: "error", error: e.stack ?? e.message });
      process.exit(1);
    });
  } else if (m.type === "stop") process.exit(0);
});
