/**
 * The per-node flow's steps in go-choria's order (host/host.go): jwt, inventory, decide,
 * certify, configure, restart. Each step reads and adds to one NodeRun and either lets the next
 * step go on (returns undefined) or ends the flow with its result. Nothing here throws for a
 * misbehaving node; a StepError (an RPC that did not succeed) ends the flow in provisionNode.
 */
import { JwtVerifyError, encryptKeyForNode, newNonce, publicClaims, signServerJwt, verifyGen25519, verifyProvisioningJwt, type JwtVerifier } from "../credentials/index.js";
import { INVENTORY_ACTION, PROVISION_ACTION, PROVISION_AGENT, RPCUTIL_AGENT, type ProvisionAction } from "../protocol/index.js";
import { CaUnavailableError, CsrRefusedError, inventoryFromRpcutil, type CheckedCsr, type Decision, type DecisionRecord, type Inventory, type RpcutilInventoryData, type SignedCertificate } from "../types/index.js";
import { ReplyWatch } from "../transport/index.js";
import type { FlowDeps, FlowOptions, FlowResult } from "./flow.js";
import type { InventoryRecorder } from "./recorder.js";
import { decisionFingerprint } from "./approvals.js";
import { StepError, runStep, type StepPolicy } from "./steps.js";

/** times one node waits for the signer to come back and signs its CSR again before it is deferred */
const MAX_SIGNER_WAITS = 10;

/** a node told to shut down exits up to 9 s after its reply (choria_provision#shutdown) */
export const SHUTDOWN_DELAY_MAX_MS = 10_000;

/** choria_provision#configure's data: the Go provisioner always sends all ten keys, sorted, with "" or {} when unused */
export function configureRequestData(
  decision: Pick<Decision, "actionPolicies" | "configuration" | "opaPolicies">,
  p: { caPem?: string; certificatePem?: string; ecdhPublic?: string; key?: string; serverJwt?: string; ssldir?: string; token: string },
): Record<string, unknown> {
  return {
    action_policies: decision.actionPolicies,
    ca: p.caPem ?? "",
    certificate: p.certificatePem ?? "",
    config: JSON.stringify(decision.configuration),
    ecdh_public: p.ecdhPublic ?? "",
    key: p.key ?? "",
    opa_policies: decision.opaPolicies,
    server_jwt: p.serverJwt ?? "",
    ssldir: p.ssldir ?? "",
    token: p.token,
  };
}

interface JwtReply {
  jwt: string;
  ecdh_public: string;
}

interface Gen25519Reply {
  public_key: string;
  directory: string;
  signature: string;
}

interface GencsrReply {
  csr: string;
  public_key: string;
  ssldir: string;
}

/** One node's way through the steps: what the earlier steps learnt, and the record being written. */
export interface NodeRun {
  readonly identity: string;
  readonly deps: FlowDeps;
  readonly o: FlowOptions;
  readonly signal?: AbortSignal;
  /** every reply to this node's requests, kept open for the flow: a second one is a conflict */
  readonly watch: ReplyWatch;
  readonly t0: number;
  readonly durations: Record<string, number>;
  readonly record: DecisionRecord;
  /** the full verified provisioning JWT claims (features.jwt) */
  jwtClaims?: Record<string, unknown>;
  /** the claims a record may hold */
  jwtPublic?: Record<string, unknown>;
  /** the node's X25519 key from its most recent jwt reply: the only one configure can decrypt with */
  nodeEcdhPublic?: string;
  ed25519?: Gen25519Reply;
  raw?: RpcutilInventoryData;
  inventory?: Inventory;
  gencsr?: GencsrReply;
  /** the CSR checker's parse of gencsr.csr, passed on to check() and the signer */
  parsedCsr?: CheckedCsr;
  decision?: Decision;
  signed?: SignedCertificate;
  keyDelivery: { key: string; ecdh_public: string };
  serverJwt: string;
}

/** a step ends the flow with a result, or returns undefined for the next step to go on */
export type FlowStep = (run: NodeRun) => Promise<FlowResult | undefined>;

export function newNodeRun(identity: string, deps: FlowDeps, o: FlowOptions, signal?: AbortSignal, watch = new ReplyWatch(identity)): NodeRun {
  const durations: Record<string, number> = {};
  return {
    identity,
    deps,
    o,
    signal,
    watch,
    t0: performance.now(),
    durations,
    record: { identity, time: new Date().toISOString(), outcome: "error", reason: "", fired: [], durations },
    keyDelivery: { key: "", ecdh_public: "" },
    serverJwt: "",
  };
}

export function finish(run: NodeRun, r: Partial<DecisionRecord>, provisioned = false, holdMs = 0): FlowResult {
  Object.assign(run.record, r);
  const w = run.watch;
  if (w.rejectCount > 0) run.record.rejectedReplies = { count: w.rejectCount, first: [...w.rejects] };
  run.durations.total = Math.round((performance.now() - run.t0) * 1000) / 1000;
  return { record: run.record, provisioned, holdMs };
}

async function timed<T>(run: NodeRun, name: string, fn: () => Promise<T>): Promise<T> {
  const s = performance.now();
  const trace = run.deps.trace;
  trace?.(run.identity, name, "start");
  let ok = false;
  try {
    const r = await fn();
    ok = true;
    return r;
  } finally {
    run.durations[name] = Math.round((performance.now() - s) * 1000) / 1000;
    trace?.(run.identity, name, ok ? "ok" : "error");
  }
}

/** one choria_provision action with its try and timeout policy, timed under its name */
function provisionCall<T>(run: NodeRun, action: ProvisionAction, data: Parameters<typeof runStep>[4], p: StepPolicy) {
  return timed(run, action, () => runStep<T>(run.deps.rpc, run.identity, PROVISION_AGENT, action, data, p, run.o.backoff, run.deps.observer, run.signal, run.watch));
}

const tokenData = (run: NodeRun) => ({ token: run.o.token });

/** waits while the signer's breaker is open; a node cancelled meanwhile ends as a cancelled step */
async function signerUp(run: NodeRun): Promise<void> {
  try {
    await run.deps.signerGate?.waitUp(run.signal);
  } catch (e) {
    throw new StepError("signer", "cancelled", (e as Error).message);
  }
}

/** features.jwt: the node proves it holds a JWT we signed before we tell it anything; features.ed25519: then gen25519 */
export async function jwt(run: NodeRun): Promise<FlowResult | undefined> {
  const { o, deps } = run;
  if (!o.jwt && !o.ed25519) return undefined;
  const j = await provisionCall<JwtReply>(run, PROVISION_ACTION.jwt, tokenData(run), o.steps.jwt);
  run.nodeEcdhPublic = typeof j.data.ecdh_public === "string" && j.data.ecdh_public !== "" ? j.data.ecdh_public : undefined;
  let verifier: JwtVerifier;
  try {
    if (!o.jwt) throw new Error("features.ed25519 needs features.jwt with jwt_verify_cert");
    verifier = o.jwt.verifier();
  } catch (e) {
    // our configuration, not the node: try it again later rather than refuse it
    return finish(run, { outcome: "defer", reason: `cannot verify provisioning JWTs: ${(e as Error).message}` });
  }
  try {
    // the file is returned untrimmed (§4.2); Go's parser ignores the trailing newline too
    run.jwtClaims = verifyProvisioningJwt(String(j.data.jwt ?? "").trim(), verifier).claims;
  } catch (e) {
    if (!(e instanceof JwtVerifyError)) throw e;
    deps.observer.jwtRefused?.(e.code);
    // the node sends the same JWT every time: do not look at it again every discovery cycle
    return finish(run, { outcome: "refused", reason: `provisioning JWT refused (${e.code}): ${e.reason}` }, false, o.holdAfterRefusalMs);
  }
  run.jwtPublic = publicClaims(run.jwtClaims);
  run.record.jwt = run.jwtPublic;

  if (!o.ed25519) return undefined;
  // a fresh nonce per request, so a replayed signature from an earlier request cannot pass
  let nonce = "";
  const g = await provisionCall<Gen25519Reply>(run, PROVISION_ACTION.gen25519, () => ({ nonce: (nonce = newNonce(o.protocolVersion ?? 1)), ...tokenData(run) }), o.steps.gen25519);
  run.ed25519 = { public_key: String(g.data.public_key ?? ""), directory: String(g.data.directory ?? ""), signature: String(g.data.signature ?? "") };
  if (!verifyGen25519(run.ed25519, nonce)) {
    deps.observer.jwtRefused?.("gen25519_signature");
    return finish(run, { outcome: "refused", reason: "gen25519 signature over our nonce does not verify with the public key the node returned" }, false, o.holdAfterRefusalMs);
  }
  return undefined;
}

/** rpcutil#inventory, and with PKI on the node's CSR (gencsr), whose summary the decision sees */
export async function inventory(run: NodeRun): Promise<FlowResult | undefined> {
  const { o, deps, identity } = run;
  const invReply = await timed(run, INVENTORY_ACTION, () => runStep<RpcutilInventoryData>(deps.rpc, identity, RPCUTIL_AGENT, INVENTORY_ACTION, {}, o.steps.inventory, o.backoff, deps.observer, run.signal, run.watch));
  const raw = (run.raw = invReply.data);
  run.inventory = inventoryFromRpcutil(identity, raw, { jwt: run.jwtPublic });
  if (o.pki) {
    // with the signer down, a CSR would only be thrown away: each one is a new key on the node
    if (deps.signer) await signerUp(run);
    const g = await provisionCall<GencsrReply>(run, PROVISION_ACTION.gencsr, { cn: identity, ...tokenData(run) }, o.steps.gencsr);
    run.gencsr = { csr: String(g.data.csr ?? ""), public_key: String(g.data.public_key ?? ""), ssldir: String(g.data.ssldir ?? "") };
    const inspected = deps.csr.inspect(run.gencsr.csr);
    if (!inspected.ok) {
      deps.observer.csrRefused(inspected.code);
      return finish(run, { outcome: "refused", reason: `CSR refused (${inspected.code}): ${inspected.reason}` }, false, o.holdAfterRefusalMs);
    }
    run.parsedCsr = inspected.parsed;
    // the ssldir is the node's word, not the CSR's: policies template key and certificate paths with it
    run.inventory.csr = run.gencsr.ssldir ? { ...inspected.csr, ssldir: run.gencsr.ssldir } : inspected.csr;
  }
  if (deps.onInventory) note(run, recordInventory(deps.onInventory, identity, raw, run.inventory));
  return undefined;
}

/** the recorder never fails a node: whatever goes wrong in it is a note in the node's record */
function recordInventory(recorder: InventoryRecorder, identity: string, raw: RpcutilInventoryData, inv: Inventory): string | undefined {
  try {
    return recorder(identity, raw, inv);
  } catch (e) {
    return `could not record the inventory: ${(e as Error).message}`;
  }
}

function note(run: NodeRun, text: string | undefined): void {
  if (text) (run.record.warnings ??= []).push(text);
}

/**
 * Why a configure decision cannot be sent as it is, naming the key at fault (a helper's
 * configuration is the usual source), or undefined when it can.
 */
export function unconfigurable(d: Pick<Decision, "brokers" | "configuration">): string | undefined {
  const missing: string[] = [];
  if (d.brokers.length === 0) missing.push("no brokers: plugin.choria.middleware_hosts is empty or missing");
  const provision = d.configuration["plugin.choria.server.provision"];
  if (provision !== "false") missing.push(`plugin.choria.server.provision is ${provision === undefined ? "missing" : JSON.stringify(provision)}, it must be "false"`);
  return missing.length ? `not configuring: ${missing.join("; ")}` : undefined;
}

/** the policy (or the legacy helper) decides; defer, shutdown and upgrade end the flow here */
export async function decide(run: NodeRun): Promise<FlowResult | undefined> {
  const { o, deps } = run;
  const inv = run.inventory!;
  const decider = deps.decider;
  const decision = await timed(run, "policy", () => decider.decide({ inventory: inv, rawInventory: run.raw as Record<string, unknown>, csr: run.gencsr, jwtClaims: run.jwtClaims, ed25519: run.ed25519 }));
  run.decision = decision;
  deps.observer.policyEvaluated(decision, (run.durations.policy ?? 0) / 1000);
  Object.assign(run.record, {
    policy: decision.policy,
    fired: decision.fired.map((f) => ({ name: f.name, ruleSet: f.ruleSet, why: f.why, priority: f.priority, source: f.source })),
    brokerSet: decision.brokerSet,
  });

  switch (decision.outcome) {
    case "defer":
      return { ...finish(run, { outcome: "defer", reason: decision.reason }), retryAfterMs: decision.retryAfterMs };
    case "shutdown":
      await provisionCall(run, PROVISION_ACTION.shutdown, tokenData(run), o.steps.shutdown);
      // the node exits 0–9 s after replying and still answers discovery until then
      return finish(run, { outcome: "shutdown", reason: decision.reason }, false, o.holdAfterRestartMs + SHUTDOWN_DELAY_MAX_MS);
    case "upgrade": {
      // like the reference: upgrade only an upgradable node on another version, else configure it
      if (inv.upgradable && decision.upgradeVersion && decision.upgradeVersion !== inv.version) {
        const repository = decision.upgradeRepository ?? o.upgradeRepository ?? "";
        await provisionCall(run, PROVISION_ACTION.release_update, { repository, version: decision.upgradeVersion, ...tokenData(run) }, o.steps.release_update);
        // the node restarts in provisioning mode on the new version and announces itself again
        return finish(run, { outcome: "upgrade", reason: decision.reason || `upgrading ${inv.version} -> ${decision.upgradeVersion}` }, false, o.holdAfterRestartMs);
      }
      break;
    }
    case "configure":
      break;
  }

  // the policy engine guarantees both; refuse rather than strand a node without brokers
  const unsafe = unconfigurable(decision);
  if (unsafe) return finish(run, { outcome: "defer", reason: unsafe });
  return undefined;
}

/** the CSR policy on the node's CSR against the decision's SANs (a helper that supplies its own TLS skips it) */
export async function checkCsr(run: NodeRun): Promise<FlowResult | undefined> {
  const { o, deps, identity } = run;
  const decision = run.decision!;
  if (decision.suppliedTls || !o.pki || !run.gencsr) return undefined;
  const checked = deps.csr.check(run.gencsr.csr, identity, decision.certificate.sans, run.parsedCsr);
  if (!checked.ok) {
    deps.observer.csrRefused(checked.code);
    return finish(run, { outcome: "refused", reason: `CSR refused (${checked.code}): ${checked.reason}` }, false, o.holdAfterRefusalMs);
  }
  return undefined;
}

/**
 * A decision that asks for approval stops here, after inventory, CSR checks and the decision
 * and before anything is signed or sent, unless an operator granted exactly this decision.
 */
export async function approve(run: NodeRun): Promise<FlowResult | undefined> {
  const decision = run.decision!;
  if (!decision.approval) return undefined;
  const grant = run.deps.approval?.(run.identity);
  const fingerprint = decisionFingerprint(decision);
  if (grant && grant.fingerprint === fingerprint) {
    run.record.approval = { reason: decision.approval.reason, approvedBy: grant.by };
    return undefined;
  }
  const reason = grant ? `the decision changed since ${grant.by} approved it; approve it again: ${decision.approval.reason}` : `awaiting approval: ${decision.approval.reason}`;
  const r = finish(run, { outcome: "awaiting_approval", reason, approval: { reason: decision.approval.reason } });
  r.pending = { inventory: run.inventory!, rawInventory: (run.raw ?? {}) as Record<string, unknown>, decision };
  return r;
}

/** the node's credentials: a helper's own TLS (and key), or a signed certificate; a server JWT with ed25519 */
export async function certify(run: NodeRun): Promise<FlowResult | undefined> {
  const { o, deps, identity } = run;
  const decision = run.decision!;
  const gencsr = run.gencsr;
  if (decision.suppliedTls) {
    // a legacy helper signed the certificate itself
    if (decision.suppliedTls.keyPem) {
      // private keys only ever travel encrypted to the node's ECDH key from its latest jwt reply (§7.4)
      if (!run.nodeEcdhPublic) {
        return finish(run, { outcome: "defer", reason: "decision supplies a private key, but it can only be delivered encrypted to the node's ECDH key: enable features.jwt (the node's jwt reply carries that key)" });
      }
      try {
        const enc = encryptKeyForNode(decision.suppliedTls.keyPem, run.nodeEcdhPublic);
        run.keyDelivery = { key: enc.encryptedPem, ecdh_public: enc.ecdhPublicHex };
      } catch (e) {
        // KeyTransportError messages name the problem, never the key
        return finish(run, { outcome: "defer", reason: `cannot deliver the supplied private key: ${(e as Error).message}` });
      }
    }
    run.signed = { certificatePem: decision.suppliedTls.certificatePem, caPem: decision.suppliedTls.caPem, serial: "", fingerprint: "", notAfter: "" };
  } else if (o.pki && gencsr) {
    if (!deps.signer) return finish(run, { outcome: "defer", reason: "PKI is on but no signer is configured" });
    const signer = deps.signer;
    for (let waits = 0; ; waits++) {
      try {
        run.signed = await timed(run, "sign", () => signer.sign({ identity, csrPem: gencsr.csr, profile: decision.certificate, checked: run.parsedCsr, policyVersion: `${decision.policy.name}@${decision.policy.version}` }));
        deps.signerGate?.success();
        deps.observer.signed(signer.kind, (run.durations.sign ?? 0) / 1000);
        break;
      } catch (e) {
        deps.observer.signFailed(signer.kind);
        // the CA is unreachable: keep the CSR and sign it when the breaker says the CA is back
        if (e instanceof CaUnavailableError && deps.signerGate && waits < MAX_SIGNER_WAITS) {
          deps.signerGate.failure(e);
          await signerUp(run);
          continue;
        }
        const why = (e as Error).message;
        if (e instanceof CaUnavailableError) return finish(run, { outcome: "defer", reason: `CA unavailable: ${why}` });
        // only the signer's CsrRefusedError is a refusal: a system error's code (EPIPE, ...) is not
        if (e instanceof CsrRefusedError) {
          deps.observer.csrRefused(e.code);
          return finish(run, { outcome: "refused", reason: `CSR refused by signer: ${why}` });
        }
        return finish(run, { outcome: "defer", reason: `signing failed: ${why}` });
      }
    }
    run.record.certificate = { serial: run.signed.serial, fingerprint: run.signed.fingerprint, notAfter: run.signed.notAfter };
  }

  if (o.ed25519 && run.ed25519) {
    try {
      const sj = signServerJwt({ identity, publicKey: run.ed25519.public_key, configuration: decision.configuration, serverClaims: decision.serverClaims }, o.ed25519.signingKey, { validity: o.ed25519.validityMs, chainToken: o.ed25519.chainToken });
      run.serverJwt = sj.token;
      run.record.serverJwt = { jti: String(sj.claims.jti), exp: Number(sj.claims.exp), iss: String(sj.claims.iss) };
      if (sj.warnings.length) run.record.warnings = [...(run.record.warnings ?? []), ...sj.warnings];
    } catch (e) {
      // bad server_claims (ServerJwtError) or an unusable signing key/token (CredentialConfigError)
      return finish(run, { outcome: "defer", reason: `cannot sign the server JWT: ${(e as Error).message}` });
    }
  }
  return undefined;
}

/** choria_provision#configure with the decision's configuration and the node's credentials */
export async function configure(run: NodeRun): Promise<FlowResult | undefined> {
  const decision = run.decision!;
  const signed = run.signed;
  const data = configureRequestData(decision, {
    caPem: signed?.caPem,
    certificatePem: signed?.certificatePem,
    ecdhPublic: run.keyDelivery.ecdh_public,
    key: run.keyDelivery.key,
    serverJwt: run.serverJwt,
    ssldir: signed ? decision.suppliedTls?.ssldir || run.gencsr?.ssldir || "" : "",
    token: run.o.token,
  });
  await provisionCall(run, PROVISION_ACTION.configure, () => configureSent(run, data), run.o.steps.configure);
  run.record.configuration = decision.configuration;
  return undefined;
}

/** every configure request is counted in the record and in the audit before it goes out, whether or not its reply comes back */
async function configureSent(run: NodeRun, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = run.record;
  const attempt = (r.configures = (r.configures ?? 0) + 1);
  const cert = r.certificate;
  await run.deps.configuring?.({
    kind: "configuring",
    identity: run.identity,
    time: new Date().toISOString(),
    attempt,
    decision: { time: r.time, policy: r.policy, brokerSet: r.brokerSet },
    ...(cert ? { certificate: { serial: cert.serial, fingerprint: cert.fingerprint } } : {}),
  });
  return data;
}

/** choria_provision#restart with the splay: the node comes back as a server and is held while it does */
export async function restart(run: NodeRun): Promise<FlowResult | undefined> {
  const { o } = run;
  await provisionCall(run, PROVISION_ACTION.restart, { splay: o.restartSplay, ...tokenData(run) }, o.steps.restart);
  return finish(run, { outcome: "configure", reason: run.decision!.reason }, true, o.holdAfterRestartMs);
}

/**
 * No second server has answered any request of this node so far. Runs before the decision, before
 * signing and before configure: a certificate for one twin's key must never go to both. It waits for nothing, so a
 * second reply still on its way is caught by the next check (or, after configure, by the record).
 */
export async function unconflicted(run: NodeRun): Promise<FlowResult | undefined> {
  const c = run.watch.conflict;
  if (!c) {
    // the provisioner queues the node again at once; a twin then answers the fresh flow too
    if (run.watch.reannounced) return finish(run, { outcome: "error", reason: "the node announced a new start during its flow: starting it afresh" });
    return undefined;
  }
  return finish(run, { outcome: "conflict", reason: `conflicting replies to ${c.step}: ${c.detail}` });
}

/** go-choria's order, with the conflict check before a decision acts (shutdown, upgrade), before the certificate is made and before it is sent */
export const FLOW_STEPS: readonly FlowStep[] = [jwt, inventory, unconflicted, decide, checkCsr, approve, unconflicted, certify, unconflicted, configure, restart];
