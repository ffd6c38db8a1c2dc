/**
 * Wires the concrete parts into a running provisioner: NATS, RPC client, policies (with hot
 * reload), CA, audit, recorder, admin endpoint. `run`, `demo`, `bench` and the integration
 * tests all start the daemon through here, so they exercise the same assembly.
 */
import { dirname, resolve } from "node:path";
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Logger } from "pino";
import type { NatsConnection } from "nats";
import { startAdminServer, type AdminServer } from "../admin/server.js";
import { CsrRefusedError, assertPrivateKeyFile, checkCsr, checkParsedCsr, createCfsslSigner, createExecSigner, openBuiltinCa, parseCsr, type ParsedCsr, type Signer } from "../ca/index.js";
import { credentialProblems, type Settings } from "../config/index.js";
import { loadJwtVerifier, parseSigningKey, signServerJwt, type JwtVerifier } from "../credentials/index.js";
import { createMetrics, type Metrics } from "../metrics/metrics.js";
import { loadPolicySet, type PolicySet } from "../policy/index.js";
import { locatePolicyTests, NoPolicyTestsError, runPolicyTests } from "../policy/testing.js";
import { watchPolicyFiles, type PolicyWatcher } from "../policy/watcher.js";
import { decisionFromHelper, helperRef, runLegacyHelper } from "../policy/legacy-helper.js";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../protocol/index.js";
import { createAuditSink } from "../provision/audit.js";
import { defaultFlowOptions, type FlowOptions } from "../provision/flow.js";
import type { CsrChecker, Decider } from "../provision/interfaces.js";
import { PolicyManager, type ReloadStatus } from "../provision/policy-manager.js";
import { Provisioner } from "../provision/provisioner.js";
import { createRecorder } from "../provision/recorder.js";
import { openHa, type Ha } from "../ha/index.js";
import { RpcClient, closeNats, connectNats } from "../transport/index.js";
import { createLogger } from "./logger.js";
import { VERSION } from "./version.js";

export { VERSION };

export interface DaemonHandle {
  settings: Settings;
  provisioner: Provisioner;
  metrics: Metrics;
  policies: PolicyManager;
  admin: AdminServer;
  nc: NatsConnection;
  log: Logger;
  reload(): Promise<ReloadStatus>;
  stop(drainMs?: number): Promise<void>;
}

export interface DaemonOverrides {
  log?: Logger;
  /** replace parts of the flow options (tests shorten timeouts and backoff) */
  flow?: Partial<FlowOptions>;
  /** extra decider wrapper, e.g. the legacy helper */
  decider?: (set: PolicySet) => Decider;
}

export function policyDecider(set: PolicySet): Decider {
  return { ref: set.ref, decide: (ctx) => set.evaluate(ctx.inventory) };
}

/** Legacy mode: the reference's helper program decides, with its metrics. */
export function helperDecider(s: Settings, metrics: Metrics): Decider {
  const command = s.helper!;
  const ref = helperRef(command);
  return {
    ref,
    async decide(ctx) {
      const started = performance.now();
      try {
        const out = await runLegacyHelper(command, s.helperArgs, { identity: ctx.inventory.identity, csr: ctx.csr ?? null, ed25519_pubkey: ctx.ed25519 ?? null, inventory: JSON.stringify(ctx.rawInventory), jwt: ctx.jwtClaims ?? null }, s.helperTimeoutMs);
        metrics.helperTime.labels(s.site).observe((performance.now() - started) / 1000);
        const d = decisionFromHelper(out, ref, ctx.inventory.identity);
        if (d.outcome === "shutdown") metrics.helperShutdownRequests.labels(s.site).inc();
        return d;
      } catch (e) {
        metrics.helperErrors.labels(s.site).inc();
        return { outcome: "defer", reason: (e as Error).message, brokers: [], configuration: {}, certificate: { validityDays: 0, sans: [] }, actionPolicies: {}, opaPolicies: {}, policy: ref, fired: [] };
      }
    },
  };
}

/** test_on_reload: a policy version whose own tests fail is not put in force */
async function requirePassingTests(policiesDir: string, testsDir: string | undefined, rulesDir: string | undefined): Promise<void> {
  const found = locatePolicyTests(policiesDir, testsDir);
  if (!found.dir) throw new NoPolicyTestsError(found.searched);
  const run = await runPolicyTests({ dir: found.dir, policiesDir, rulesDir });
  const failed = run.results.filter((r) => !r.passed);
  if (run.problems.length === 0 && failed.length === 0) return;
  const problems = [
    ...run.problems,
    ...failed.map((f) => {
      const m = /^(.*):(\d+)$/.exec(f.source);
      return { file: m ? m[1] : f.file, line: m ? Number(m[2]) : 1, col: 1, rule: f.name, message: `policy test failed: ${f.failures.join("; ")}` };
    }),
  ];
  throw Object.assign(new Error(`policy tests failed (${failed.length} failing cases, ${run.problems.length} problems): ${problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join("\n")}`), { problems });
}

export function rulesDirFor(s: Pick<Settings, "rulesDir" | "policiesDir">): string {
  return s.rulesDir ?? resolve(dirname(s.policiesDir), "rules");
}

export async function openSigner(s: Settings): Promise<Signer> {
  const caPem = s.ca.caFile ? readFileSync(s.ca.caFile, "utf8") : undefined;
  switch (s.ca.type) {
    case "builtin": {
      if (!s.ca.dir) throw new Error("PKI is on with the built-in CA but no CA directory is set (--ca-dir or ca.dir)");
      if (!existsSync(s.ca.dir)) throw new Error(`CA directory ${s.ca.dir} does not exist; create one with: choria-provisioner ca init --dir ${s.ca.dir}`);
      return openBuiltinCa(s.ca.dir, { workers: s.ca.workers });
    }
    case "cfssl":
      if (!s.ca.url) throw new Error("ca.type cfssl needs ca.url");
      return createCfsslSigner({ url: s.ca.url, profile: s.ca.profile, label: s.ca.label, timeoutMs: s.ca.timeoutMs, caPem });
    case "exec":
      if (!s.ca.command) throw new Error("ca.type exec needs ca.command");
      return createExecSigner({ command: s.ca.command, args: s.ca.args, timeoutMs: s.ca.timeoutMs, caPem });
  }
}

export function csrChecker(denyList?: string[]): CsrChecker {
  // case-insensitive like the built-in deny list: DNS names are
  const denyPatterns = denyList?.map((p) => new RegExp(p, "i"));
  return {
    inspect(pem) {
      try {
        // parsed once here; check() reuses it (parsing and verifying dominated the main thread)
        const parsed = parseCsr(pem);
        return { ok: true, csr: parsed.summary, parsed };
      } catch (e) {
        if (e instanceof CsrRefusedError) return { ok: false, code: e.code, reason: e.message };
        return { ok: false, code: "malformed", reason: (e as Error).message };
      }
    },
    check(pem, identity, allowedSans, parsed) {
      const policy = { identity, allowedSans, denyPatterns };
      return parsed ? checkParsedCsr(parsed as ParsedCsr, policy) : checkCsr(pem, policy);
    },
  };
}

export function flowOptionsFrom(s: Settings, extra: Partial<FlowOptions> = {}): FlowOptions {
  const f = defaultFlowOptions();
  f.token = s.token;
  f.pki = s.pki;
  f.restartSplay = s.restartSplay;
  f.holdAfterRestartMs = s.holdAfterRestartMs;
  f.holdAfterRefusalMs = s.holdAfterRefusalMs;
  f.upgradeRepository = s.upgradeRepository;
  f.backoff.maxMs = s.backoffMaxMs;
  f.steps.inventory.timeoutMs = s.inventoryTimeoutMs;
  for (const k of ["jwt", "gen25519", "gencsr", "configure", "restart", "shutdown", "release_update"] as const) f.steps[k].timeoutMs = Math.min(f.steps[k].timeoutMs, s.provisionTimeoutMs);
  for (const k of Object.keys(f.steps) as Array<keyof FlowOptions["steps"]>) f.steps[k].maxTimeouts = Math.min(f.steps[k].maxTimeouts, s.maxTimeouts);
  return { ...f, ...extra, steps: { ...f.steps, ...(extra.steps ?? {}) }, backoff: { ...f.backoff, ...(extra.backoff ?? {}) } };
}

/**
 * jwt_verify_cert as the flow wants it: loaded now so a bad value stops the start, then re-read
 * whenever the file changes (the Go provisioner reads it for every node, so a rotated key takes
 * effect without a restart; we do the same without a read per node).
 */
export function jwtVerifierSource(pathOrHex: string): () => JwtVerifier {
  const mtime = (): number | undefined => {
    try {
      return statSync(pathOrHex).mtimeMs;
    } catch {
      return undefined;
    }
  };
  let seen = mtime();
  let verifier = loadJwtVerifier(pathOrHex);
  return () => {
    const m = mtime();
    if (m !== seen) {
      verifier = loadJwtVerifier(pathOrHex);
      seen = m;
    }
    return verifier;
  };
}

function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    // the error names the file, never its contents
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The credentials part of the flow options (features.jwt / ed25519, protocol), checked before anything starts. */
export function credentialFlowOptions(s: Settings): Pick<FlowOptions, "jwt" | "ed25519" | "protocolVersion"> {
  const problems = credentialProblems(s);
  if (problems.length) throw new Error(`invalid credentials configuration:\n  ${problems.join("\n  ")}`);
  const out: Pick<FlowOptions, "jwt" | "ed25519" | "protocolVersion"> = { protocolVersion: s.protocol };
  if (s.jwt) out.jwt = { verifier: jwtVerifierSource(s.jwtVerifyCert!) };
  if (s.ed25519) {
    const signingKey = readSecretFile(s.jwtSigningKeyFile!, "jwt_signing_key");
    // like the CA key: a signing key others can read is refused, not used
    assertPrivateKeyFile(s.jwtSigningKeyFile!, "jwt_signing_key");
    parseSigningKey(signingKey);
    const chainToken = s.jwtSigningTokenFile ? readSecretFile(s.jwtSigningTokenFile, "jwt_signing_token").trim() : undefined;
    // sign one throwaway token now: a key that does not match the chain token, or an expired
    // chain token, would otherwise only show up as every node being deferred
    signServerJwt({ identity: "startup.check", publicKey: "00".repeat(32) }, signingKey, { validity: s.serverJwtValidityMs, chainToken });
    out.ed25519 = { signingKey, chainToken, validityMs: s.serverJwtValidityMs };
  }
  return out;
}

export async function startDaemon(s: Settings, ov: DaemonOverrides = {}): Promise<DaemonHandle> {
  const log = ov.log ?? createLogger({ level: s.logLevel, file: s.logFile });
  const metrics = createMetrics(s.site);
  const rulesDir = rulesDirFor(s);
  const toDecider = ov.decider ?? policyDecider;
  const credentials = credentialFlowOptions(s);
  const clientJwt = s.protocol === 2 ? readSecretFile(s.clientJwtFile!, "client_jwt").trim() : undefined;

  const load = s.helper
    ? async () => helperDecider(s, metrics)
    : async () => {
        const set = await loadPolicySet({ policiesDir: s.policiesDir, rulesDir: existsSync(rulesDir) ? rulesDir : undefined, policy: s.policy });
        if (s.testOnReload) await requirePassingTests(s.policiesDir, s.testsDir, existsSync(rulesDir) ? rulesDir : undefined);
        return toDecider(set);
      };
  const policies = new PolicyManager(load, {
    reloaded: (ref) => {
      metrics.policyReloads.labels(s.site, "ok").inc();
      metrics.policyInfo.reset();
      metrics.policyInfo.labels(s.site, ref.name, ref.version, ref.hash).set(1);
      log.info({ policy: ref.name, version: ref.version, hash: ref.hash }, "policy loaded");
    },
    reloadFailed: (error, problems) => {
      metrics.policyReloads.labels(s.site, "error").inc();
      for (const p of problems) log.error(`${p.file}:${p.line}:${p.col}: ${p.rule ? p.rule + ": " : ""}${p.message}`);
      log.error({ problems: problems.length }, `policy reload failed, keeping the version in force: ${error.split("\n")[0]}`);
    },
  });
  if (s.testOnReload && !s.helper) {
    // missing tests are a setting to fix, not invalid policies
    const found = locatePolicyTests(s.policiesDir, s.testsDir);
    if (!found.dir) throw new Error(`cannot start: test_on_reload is on and ${new NoPolicyTestsError(found.searched).message}; set policy_tests to their directory`);
  }
  const first = await policies.reload();
  if (!first.ok) throw new Error(`cannot start: the policies in ${s.policiesDir} are invalid:\n${first.error}`);

  const signer = s.pki ? await openSigner(s) : undefined;
  let nc: NatsConnection | undefined;
  try {
    nc = await connectNats({
      servers: s.brokers,
      name: s.identity,
      user: s.brokerUser,
      pass: s.brokerPassword,
      token: s.brokerToken,
      credsFile: s.brokerCreds,
      tls: s.tls ? { caFile: s.tls.ca, certFile: s.tls.cert, keyFile: s.tls.key, insecure: s.tls.insecure } : undefined,
      onStatus: (type, data) => {
        if (type === "reconnect") metrics.natsReconnects.labels(s.site).inc();
        if (type === "disconnect" || type === "reconnect" || type === "error") log.warn({ nats: type, server: typeof data === "string" ? data : undefined }, `NATS ${type}`);
      },
    });
  } catch (e) {
    await signer?.close();
    throw new Error(`cannot connect to the broker ${s.brokers.join(",")}: ${(e as Error).message}`);
  }
  const rpc = new RpcClient({
    nc,
    identity: s.identity,
    protocol: s.protocol,
    callerJwt: clientJwt,
    onInvalidReply: (e) => {
      metrics.invalidReplies.labels(s.site).inc();
      log.warn({ err: e.message }, "invalid reply dropped");
    },
    onUnexpectedReply: (expected, got) => {
      metrics.invalidReplies.labels(s.site).inc();
      log.warn({ expected, got }, "reply from an unexpected sender dropped");
    },
  });
  rpc.start();

  const conn = nc;
  const audit = createAuditSink({
    file: s.auditFile,
    subject: s.auditSubject,
    publish: s.auditSubject ? (subj, data) => conn.publish(subj, data) : undefined,
    onError: (e) => {
      metrics.auditErrors.labels(s.site).inc();
      log.error({ err: e.message }, "audit write failed");
    },
  });

  // HA needs JetStream: open its buckets before anything else depends on them
  let ha: Ha | undefined;
  if (s.leaderElection || s.activeActive) {
    if (s.leaderElection && s.activeActive) log.warn("both leader_election and active_active are set: running active-active");
    try {
      ha = await openHa({
        nc,
        mode: s.activeActive ? "active-active" : "leader",
        identity: s.identity,
        apiPrefix: s.ha.apiPrefix,
        election: { ttlMs: s.ha.electionTtlMs, standDownMs: s.ha.standDownMs, replicas: s.ha.replicas },
        claims: { ttlMs: s.ha.claimTtlMs, replicas: s.ha.replicas },
        log,
        onRole: (role, prev) => {
          metrics.role.labels(s.site, prev).set(0);
          metrics.role.labels(s.site, role).set(1);
        },
      });
    } catch (e) {
      await rpc.close();
      await closeNats(nc);
      await signer?.close();
      throw new Error(`cannot start ${s.activeActive ? "active-active mode" : "leader election"} (needs JetStream on the broker): ${(e as Error).message}`);
    }
  } else metrics.role.labels(s.site, "standalone").set(1);

  const provisioner = new Provisioner(
    {
      site: s.site,
      identity: s.identity,
      workers: s.workers,
      queue: { maxSize: s.queueMaxSize, maxWaitMs: s.queueMaxWaitMs },
      flow: flowOptionsFrom(s, { ...credentials, ...ov.flow }),
      intake: {
        lifecycleComponent: s.lifecycleComponent,
        aliveEvents: s.aliveEvents,
        registration: s.registration,
        legacyRegistration: s.legacyRegistration,
        discoveryIntervalMs: s.discoveryIntervalMs,
        discoveryTimeoutMs: s.discoveryTimeoutMs,
        discoveryQuietMs: s.discoveryQuietMs,
        discoverAtStart: s.discoverAtStart,
      },
    },
    {
      nc,
      rpc,
      policies,
      signer,
      csr: csrChecker(s.certDenyList),
      metrics,
      log,
      audit,
      onInventory: s.recordDir ? createRecorder(s.recordDir, (e) => log.warn({ err: e.message }, "could not record inventory")) : undefined,
      claims: ha?.claims,
    },
  );

  let admin: AdminServer;
  try {
    admin = await startAdminServer({ listen: s.adminListen, token: s.adminToken, registry: metrics.registry, target: { status: () => provisioner.status() as never, pause: () => provisioner.pause(), resume: () => provisioner.resume() } });
  } catch (e) {
    await closeNats(nc);
    await signer?.close();
    throw new Error(`cannot start the admin endpoint on ${s.adminListen}: ${(e as Error).message}`);
  }

  let watcher: PolicyWatcher | undefined;
  if (s.watch && !s.helper) {
    watcher = watchPolicyFiles([s.policiesDir, ...(existsSync(rulesDir) ? [rulesDir] : [])], (paths) => {
      log.info({ changed: paths.length }, "policy files changed, reloading");
      void policies.reload();
    });
    await watcher.ready;
  }

  // in leader mode this makes the provisioner a standby before its intake and discovery start
  await ha?.start(provisioner);
  provisioner.start();
  nc.publish(lifecycleSubject("startup", "provisioner"), encodeLifecycle(newLifecycleEvent("startup", s.identity, "provisioner", { version: VERSION }), "choria"));
  log.info({ identity: s.identity, brokers: s.brokers, admin: admin.url, workers: s.workers, pki: s.pki, ca: s.pki ? s.ca.type : "off", jwt: s.jwt, ed25519: s.ed25519, protocol: s.protocol }, "provisioner started");

  let stopped = false;
  return {
    settings: s,
    provisioner,
    metrics,
    policies,
    admin,
    nc,
    log,
    reload: () => policies.reload(),
    async stop(drainMs = 30_000) {
      if (stopped) return;
      stopped = true;
      await watcher?.close();
      await provisioner.stop(drainMs);
      // after the drain: a successor must not pick up nodes we were still finishing
      await ha?.stop();
      await rpc.close();
      await audit.close();
      await admin.close();
      await closeNats(conn);
      await signer?.close();
      log.info("provisioner stopped");
      log.flush?.();
    },
  };
}
