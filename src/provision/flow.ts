/**
 * The per-node provisioning flow: its options and what it needs, and provisionNode, which runs
 * the steps of flow-steps.ts in go-choria's order (jwt, inventory, decide, certify, configure,
 * restart) and ends in one DecisionRecord whatever happens. Nothing here throws for a
 * misbehaving node: every failure becomes a record with a reason. Secrets (the provisioning token, delivered private keys) never enter a record.
 */
import type { CredentialOptions } from "../credentials/settings.js";
import { PING_ACTION, PROVISION_ACTION, PROVISION_AGENT, RPCUTIL_AGENT } from "../protocol/index.js";
import { RpcNoRespondersError } from "../transport/errors.js";
import type { ConfiguringRecord, CsrChecker, Decider, DecisionRecord, Decision, Inventory, Signer } from "../types/index.js";
import { FLOW_STEPS, SHUTDOWN_DELAY_MAX_MS, finish, newNodeRun, type NodeRun } from "./flow-steps.js";
import type { ReplyWatch } from "../transport/index.js";
import type { RpcCaller } from "./interfaces.js";
import { StepError, type BackoffPolicy, type StepObserver, type StepPolicy } from "./steps.js";
import type { InventoryRecorder } from "./recorder.js";

export { SHUTDOWN_DELAY_MAX_MS, configureRequestData } from "./flow-steps.js";

/** credentials (jwt, ed25519, protocolVersion): see credentials/settings.ts */
export interface FlowOptions extends CredentialOptions {
  token: string;
  pki: boolean;
  restartSplay: number;
  /** how long a restarted node is kept from being queued again: covers its splay */
  holdAfterRestartMs: number;
  /** a node whose CSR was refused asks again with the same CSR; do not re-examine it every cycle */
  holdAfterRefusalMs: number;
  steps: {
    jwt: StepPolicy;
    gen25519: StepPolicy;
    inventory: StepPolicy;
    gencsr: StepPolicy;
    configure: StepPolicy;
    restart: StepPolicy;
    shutdown: StepPolicy;
    release_update: StepPolicy;
  };
  backoff: BackoffPolicy;
  /** upgrade repository URL given to release_update when the policy names none */
  upgradeRepository?: string;
}

/** the signer's circuit breaker (signer-breaker.ts), as the flow sees it */
export interface SignerGate {
  /** resolves once the signer is up (at once while it is) */
  waitUp(signal?: AbortSignal): Promise<void>;
  failure(e: Error): void;
  success(): void;
}

export interface FlowDeps {
  rpc: RpcCaller;
  decider: Decider;
  signer?: Signer;
  signerGate?: SignerGate;
  csr: CsrChecker;
  observer: FlowObserver;
  /** called with each inventory seen, for --record; a note it returns goes into the node's record */
  onInventory?: InventoryRecorder;
  /** each timed step's start and end, for the node registry's timeline */
  trace?: (identity: string, step: string, result: "start" | "ok" | "error") => void;
  /** the audit's line for a configure request: the request waits until it is written (audit.ts) */
  configuring?: (r: ConfiguringRecord) => Promise<void>;
  /** an operator's grant for a node whose decision asks for approval (approvals.ts) */
  approval?: (identity: string) => { fingerprint: string; by: string } | undefined;
}

export interface FlowObserver extends StepObserver {
  policyEvaluated(decision: Decision, seconds: number): void;
  csrRefused(code: string): void;
  /** a node's provisioning JWT (JwtVerifyError code) or gen25519 signature ("gen25519_signature") did not verify */
  jwtRefused?(reason: string): void;
  signed(signer: string, seconds: number): void;
  signFailed(signer: string): void;
  lockHeld(): void;
}

export interface FlowResult {
  record: DecisionRecord;
  /** the node was configured and restarted */
  provisioned: boolean;
  holdMs: number;
  /** outcome awaiting_approval: what the approval store keeps for the re-check */
  pending?: { inventory: Inventory; rawInventory: Record<string, unknown>; decision: Decision };
  /** a deferring decision's wish for when to try the node again */
  retryAfterMs?: number;
}

/** the probe of a node that let a step time out waits no longer than this for the broker's word */
const PROBE_TIMEOUT_MS = 2000;

/**
 * A step got no reply: does the node still listen? The broker answers for a subject nobody is
 * subscribed to (no responders) at once, so a node that has left provisioning mode (restarted by
 * us or by a provisioner before us, e.g. an HA leader that died) is told from a silent one.
 */
async function silentAndGone(run: NodeRun): Promise<boolean> {
  if (run.signal?.aborted) return false;
  try {
    await run.deps.rpc.call(run.identity, RPCUTIL_AGENT, PING_ACTION, {}, { timeoutMs: Math.min(run.o.steps.inventory.timeoutMs, PROBE_TIMEOUT_MS), signal: run.signal });
    return false;
  } catch (e) {
    return e instanceof RpcNoRespondersError;
  }
}

/**
 * Nothing answers for the node any more: it was never there, or it left provisioning mode (a
 * restart, ours whose reply was lost or a predecessor's), which is `gone`, not an error. Right
 * after a broker restart a node that has not subscribed again looks the same, so gone is
 * retried a few times (retry.ts) rather than taken as the restart having happened.
 */
function leftProvisioning(run: NodeRun, e: StepError): FlowResult {
  const silent = e.kind === "absent" ? "" : " and nothing answers for the node any more";
  const sent = run.record.configures ? `; configure was sent ${run.record.configures} time(s)${run.record.configuration ? " and answered" : " and may have been applied"}` : "";
  return finish(run, { outcome: "gone", reason: `not in provisioning mode: ${e.message}${silent}${sent}` });
}

/** `watch` sees every reply to the node's requests (a second one is a conflict); closed when the flow ends */
export async function provisionNode(identity: string, deps: FlowDeps, o: FlowOptions, signal?: AbortSignal, watch?: ReplyWatch): Promise<FlowResult> {
  const run = newNodeRun(identity, deps, o, signal, watch);
  try {
    for (const step of FLOW_STEPS) {
      const ended = await step(run);
      if (ended) return ended;
    }
    // restart, the last step, always ends the flow
    throw new Error("the flow's steps ended without a result");
  } catch (e) {
    if (e instanceof StepError) {
      if (e.kind === "lock") deps.observer.lockHeld();
      if (e.kind === "absent" || (e.kind === "timeout" && (await silentAndGone(run)))) return leftProvisioning(run, e);
      let why = e.kind === "lock" ? `provisioning lock held by another provisioner (${e.step})` : e.message;
      // the node may have applied a configure whose reply never came: the record says so
      if (e.step === `${PROVISION_AGENT}#${PROVISION_ACTION.configure}` && run.record.configures) why = `configure sent ${run.record.configures} time(s), reply lost: the node may have applied it (${e.message})`;
      // an unanswered restart or shutdown most likely took effect: keep the node from being
      // provisioned again while it restarts or exits; if it did not, it is found again after
      let hold = 0;
      if (e.step === `${PROVISION_AGENT}#${PROVISION_ACTION.restart}`) hold = o.holdAfterRestartMs;
      if (e.step === `${PROVISION_AGENT}#${PROVISION_ACTION.shutdown}`) hold = o.holdAfterRestartMs + SHUTDOWN_DELAY_MAX_MS;
      return finish(run, { outcome: "error", reason: why, error: e.message }, false, hold);
    }
    return finish(run, { outcome: "error", reason: `internal error: ${(e as Error).message}`, error: (e as Error).stack ?? String(e) });
  } finally {
    run.watch.close();
  }
}
