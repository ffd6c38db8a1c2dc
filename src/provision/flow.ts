/**
 * The per-node provisioning flow: [jwt -> gen25519 ->] inventory -> CSR -> decision -> CSR
 * policy + signing [| server JWT] -> configure -> restart, ending in one DecisionRecord whatever
 * happens. Nothing here throws for a misbehaving node: every failure becomes a record with a
 * reason. Secrets (the provisioning token, delivered private keys) never enter a record.
 */
import type { CredentialOptions } from "../credentials/settings.js";
import { JwtVerifyError, encryptKeyForNode, newNonce, publicClaims, signServerJwt, verifyGen25519, verifyProvisioningJwt, type JwtVerifier } from "../credentials/index.js";
import { inventoryFromRpcutil, type DecisionRecord, type Decision, type Inventory, type RpcutilInventoryData } from "../types/index.js";
import { CaUnavailableError, CsrRefusedError, type CheckedCsr, type CsrChecker, type Decider, type SignedCertificate, type Signer } from "../types/index.js";
import { INVENTORY_ACTION, PROVISION_ACTION, PROVISION_AGENT, RPCUTIL_AGENT } from "../protocol/index.js";
import type { RpcCaller } from "./interfaces.js";
import { StepError, runStep, type BackoffPolicy, type StepObserver, type StepPolicy } from "./steps.js";

/** a node told to shut down exits up to 9 s after its reply (choria_provision#shutdown) */
export const SHUTDOWN_DELAY_MAX_MS = 10_000;

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

export interface FlowDeps {
  rpc: RpcCaller;
  decider: Decider;
  signer?: Signer;
  csr: CsrChecker;
  observer: FlowObserver;
  /** called with each inventory seen, for --record */
  onInventory?: (identity: string, raw: RpcutilInventoryData, inv: Inventory) => void;
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

export function defaultFlowOptions(): FlowOptions {
  const p = (tries: number, timeoutMs: number, maxTimeouts = 2): StepPolicy => ({ tries, timeoutMs, maxTimeouts });
  return {
    token: "",
    pki: true,
    restartSplay: 1,
    holdAfterRestartMs: 10_000,
    holdAfterRefusalMs: 300_000,
    // rpcutil's DDL timeout is 2 s and choria_provision's 20 s; gencsr makes an RSA key on the node
    // the reference's try counts: jwt 3, gen25519 5 (§8); gen25519 makes a key on the node
    steps: { jwt: p(3, 22_000), gen25519: p(5, 22_000, 1), inventory: p(5, 4000), gencsr: p(2, 22_000, 1), configure: p(5, 22_000), restart: p(3, 10_000), shutdown: p(3, 10_000), release_update: p(3, 22_000, 1) },
    backoff: { baseMs: 250, maxMs: 5000 },
  };
}

export async function provisionNode(identity: string, deps: FlowDeps, o: FlowOptions, signal?: AbortSignal): Promise<FlowResult> {
  const t0 = performance.now();
  const durations: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      durations[name] = Math.round((performance.now() - s) * 1000) / 1000;
    }
  };
  const record: DecisionRecord = { identity, time: new Date().toISOString(), outcome: "error", reason: "", fired: [], durations };
  const finish = (r: Partial<DecisionRecord>, provisioned = false, holdMs = 0): FlowResult => {
    Object.assign(record, r);
    durations.total = Math.round((performance.now() - t0) * 1000) / 1000;
    return { record, provisioned, holdMs };
  };
  const step = <T>(action: string, agent: string, data: Record<string, unknown> | ((attempt: number) => Record<string, unknown>), p: StepPolicy) =>
    timed(action, () => runStep<T>(deps.rpc, identity, agent, action, data, p, o.backoff, deps.observer, signal));
  const tokenData = { token: o.token };

  try {
    // features.jwt: the node proves it holds a JWT we signed before we tell it anything
    let jwtClaims: Record<string, unknown> | undefined;
    let jwtPublic: Record<string, unknown> | undefined;
    /** the node's X25519 key from its most recent jwt reply: the only one configure can decrypt with */
    let nodeEcdhPublic: string | undefined;
    if (o.jwt || o.ed25519) {
      const j = await step<JwtReply>("jwt", PROVISION_AGENT, tokenData, o.steps.jwt);
      nodeEcdhPublic = typeof j.data.ecdh_public === "string" && j.data.ecdh_public !== "" ? j.data.ecdh_public : undefined;
      let verifier: JwtVerifier;
      try {
        if (!o.jwt) throw new Error("features.ed25519 needs features.jwt with jwt_verify_cert");
        verifier = o.jwt.verifier();
      } catch (e) {
        // our configuration, not the node: try it again later rather than refuse it
        return finish({ outcome: "defer", reason: `cannot verify provisioning JWTs: ${(e as Error).message}` });
      }
      try {
        // the file is returned untrimmed (§4.2); Go's parser ignores the trailing newline too
        jwtClaims = verifyProvisioningJwt(String(j.data.jwt ?? "").trim(), verifier).claims;
      } catch (e) {
        if (!(e instanceof JwtVerifyError)) throw e;
        deps.observer.jwtRefused?.(e.code);
        // the node sends the same JWT every time: do not look at it again every discovery cycle
        return finish({ outcome: "refused", reason: `provisioning JWT refused (${e.code}): ${e.reason}` }, false, o.holdAfterRefusalMs);
      }
      jwtPublic = publicClaims(jwtClaims);
      record.jwt = jwtPublic;
    }

    let ed25519: Gen25519Reply | undefined;
    if (o.ed25519) {
      // a fresh nonce per request, so a replayed signature from an earlier request cannot pass
      let nonce = "";
      const g = await step<Gen25519Reply>("gen25519", PROVISION_AGENT, () => ({ nonce: (nonce = newNonce(o.protocolVersion ?? 1)), ...tokenData }), o.steps.gen25519);
      ed25519 = { public_key: String(g.data.public_key ?? ""), directory: String(g.data.directory ?? ""), signature: String(g.data.signature ?? "") };
      if (!verifyGen25519(ed25519, nonce)) {
        deps.observer.jwtRefused?.("gen25519_signature");
        return finish({ outcome: "refused", reason: "gen25519 signature over our nonce does not verify with the public key the node returned" }, false, o.holdAfterRefusalMs);
      }
    }

    const invReply = await step<RpcutilInventoryData>(INVENTORY_ACTION, RPCUTIL_AGENT, {}, o.steps.inventory);
    const raw = invReply.data;

    let gencsr: GencsrReply | undefined;
    let parsedCsr: CheckedCsr | undefined;
    let inventory = inventoryFromRpcutil(identity, raw, { jwt: jwtPublic });
    if (o.pki) {
      const g = await step<GencsrReply>("gencsr", PROVISION_AGENT, { cn: identity, ...tokenData }, o.steps.gencsr);
      gencsr = { csr: String(g.data.csr ?? ""), public_key: String(g.data.public_key ?? ""), ssldir: String(g.data.ssldir ?? "") };
      const inspected = deps.csr.inspect(gencsr.csr);
      if (!inspected.ok) {
        deps.observer.csrRefused(inspected.code);
        return finish({ outcome: "refused", reason: `CSR refused (${inspected.code}): ${inspected.reason}` }, false, o.holdAfterRefusalMs);
      }
      parsedCsr = inspected.parsed;
      inventory = inventoryFromRpcutil(identity, raw, { csr: inspected.csr, jwt: jwtPublic });
    }
    deps.onInventory?.(identity, raw, inventory);

    const decider = deps.decider;
    const decision = await timed("policy", () => decider.decide({ inventory, rawInventory: raw as Record<string, unknown>, csr: gencsr, jwtClaims, ed25519 }));
    deps.observer.policyEvaluated(decision, (durations.policy ?? 0) / 1000);
    Object.assign(record, {
      policy: decision.policy,
      fired: decision.fired.map((f) => ({ name: f.name, ruleSet: f.ruleSet, why: f.why })),
      brokerSet: decision.brokerSet,
    });

    switch (decision.outcome) {
      case "defer":
        return finish({ outcome: "defer", reason: decision.reason });
      case "shutdown":
        await step("shutdown", PROVISION_AGENT, tokenData, o.steps.shutdown);
        // the node exits 0–9 s after replying and still answers discovery until then
        return finish({ outcome: "shutdown", reason: decision.reason }, false, o.holdAfterRestartMs + SHUTDOWN_DELAY_MAX_MS);
      case "upgrade": {
        // like the reference: upgrade only an upgradable node on another version, else configure it
        if (inventory.upgradable && decision.upgradeVersion && decision.upgradeVersion !== inventory.version) {
          const repository = decision.upgradeRepository ?? o.upgradeRepository ?? "";
          await step("release_update", PROVISION_AGENT, { repository, version: decision.upgradeVersion, ...tokenData }, o.steps.release_update);
          // the node restarts in provisioning mode on the new version and announces itself again
          return finish({ outcome: "upgrade", reason: decision.reason || `upgrading ${inventory.version} -> ${decision.upgradeVersion}` }, false, o.holdAfterRestartMs);
        }
        break;
      }
      case "configure":
        break;
    }

    if (decision.brokers.length === 0 || decision.configuration["plugin.choria.server.provision"] !== "false") {
      // the policy engine guarantees both; refuse rather than strand a node without brokers
      return finish({ outcome: "defer", reason: "decision has no brokers or does not disable provisioning; not configuring" });
    }

    let signed: SignedCertificate | undefined;
    let keyDelivery = { key: "", ecdh_public: "" };
    if (decision.suppliedTls) {
      // a legacy helper signed the certificate itself
      if (decision.suppliedTls.keyPem) {
        // private keys only ever travel encrypted to the node's ECDH key from its latest jwt reply (§7.4)
        if (!nodeEcdhPublic) {
          return finish({ outcome: "defer", reason: "decision supplies a private key, but it can only be delivered encrypted to the node's ECDH key: enable features.jwt (the node's jwt reply carries that key)" });
        }
        try {
          const enc = encryptKeyForNode(decision.suppliedTls.keyPem, nodeEcdhPublic);
          keyDelivery = { key: enc.encryptedPem, ecdh_public: enc.ecdhPublicHex };
        } catch (e) {
          // KeyTransportError messages name the problem, never the key
          return finish({ outcome: "defer", reason: `cannot deliver the supplied private key: ${(e as Error).message}` });
        }
      }
      signed = { certificatePem: decision.suppliedTls.certificatePem, caPem: decision.suppliedTls.caPem, serial: "", fingerprint: "", notAfter: "" };
    } else if (o.pki && gencsr) {
      const checked = deps.csr.check(gencsr.csr, identity, decision.certificate.sans, parsedCsr);
      if (!checked.ok) {
        deps.observer.csrRefused(checked.code);
        return finish({ outcome: "refused", reason: `CSR refused (${checked.code}): ${checked.reason}` }, false, o.holdAfterRefusalMs);
      }
      if (!deps.signer) return finish({ outcome: "defer", reason: "PKI is on but no signer is configured" });
      const signer = deps.signer;
      try {
        signed = await timed("sign", () => signer.sign({ identity, csrPem: gencsr!.csr, profile: decision.certificate, checked: parsedCsr }));
        deps.observer.signed(signer.kind, (durations.sign ?? 0) / 1000);
      } catch (e) {
        deps.observer.signFailed(signer.kind);
        const why = (e as Error).message;
        if (e instanceof CaUnavailableError) return finish({ outcome: "defer", reason: `CA unavailable: ${why}` });
        // only the signer's CsrRefusedError is a refusal: a system error's code (EPIPE, ...) is not
        if (e instanceof CsrRefusedError) {
          deps.observer.csrRefused(e.code);
          return finish({ outcome: "refused", reason: `CSR refused by signer: ${why}` });
        }
        return finish({ outcome: "defer", reason: `signing failed: ${why}` });
      }
      record.certificate = { serial: signed.serial, fingerprint: signed.fingerprint, notAfter: signed.notAfter };
    }

    let serverJwt = "";
    if (o.ed25519 && ed25519) {
      try {
        const sj = signServerJwt({ identity, publicKey: ed25519.public_key, configuration: decision.configuration, serverClaims: decision.serverClaims }, o.ed25519.signingKey, { validity: o.ed25519.validityMs, chainToken: o.ed25519.chainToken });
        serverJwt = sj.token;
        record.serverJwt = { jti: String(sj.claims.jti), exp: Number(sj.claims.exp), iss: String(sj.claims.iss) };
        if (sj.warnings.length) record.warnings = [...(record.warnings ?? []), ...sj.warnings];
      } catch (e) {
        // bad server_claims (ServerJwtError) or an unusable signing key/token (CredentialConfigError)
        return finish({ outcome: "defer", reason: `cannot sign the server JWT: ${(e as Error).message}` });
      }
    }

    const configureData = configureRequestData(decision, {
      caPem: signed?.caPem,
      certificatePem: signed?.certificatePem,
      ecdhPublic: keyDelivery.ecdh_public,
      key: keyDelivery.key,
      serverJwt,
      ssldir: signed ? decision.suppliedTls?.ssldir || gencsr?.ssldir || "" : "",
      token: o.token,
    });
    await step("configure", PROVISION_AGENT, configureData, o.steps.configure);
    record.configuration = decision.configuration;
    await step("restart", PROVISION_AGENT, { splay: o.restartSplay, ...tokenData }, o.steps.restart);
    return finish({ outcome: "configure", reason: decision.reason }, true, o.holdAfterRestartMs);
  } catch (e) {
    if (e instanceof StepError) {
      if (e.kind === "lock") deps.observer.lockHeld();
      const why = e.kind === "lock" ? `provisioning lock held by another provisioner (${e.step})` : e.message;
      // an unanswered restart or shutdown most likely took effect: keep the node from being
      // provisioned again while it restarts or exits; if it did not, it is found again after
      let hold = 0;
      if (e.step === `${PROVISION_AGENT}#${PROVISION_ACTION.restart}`) hold = o.holdAfterRestartMs;
      if (e.step === `${PROVISION_AGENT}#${PROVISION_ACTION.shutdown}`) hold = o.holdAfterRestartMs + SHUTDOWN_DELAY_MAX_MS;
      return finish({ outcome: "error", reason: why, error: e.message }, false, hold);
    }
    return finish({ outcome: "error", reason: `internal error: ${(e as Error).message}`, error: (e as Error).stack ?? String(e) });
  }
}
