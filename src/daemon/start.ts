/**
 * Wires the concrete parts into a running provisioner: NATS, RPC client, policies (with hot
 * reload), CA, audit, recorder, admin endpoint. `run`, `demo`, `bench` and the integration
 * tests all start the daemon through here, so they exercise the same assembly.
 */
import { dirname, resolve } from "node:path";
import { existsSync } from "node:fs";
import type { Logger } from "pino";
import type { NatsConnection } from "nats";
import { AdminRequestError, AdminUnavailableError, isLoopbackListen, startAdminServer, type AdminCa, type AdminServer, type NodesTarget } from "../admin/server.js";
import type { OperatorAction } from "../provision/operator.js";
import { csrChecker, openCaLifecycle, openSigner, ReplicationError, REVOCATION_REASONS, type CaLifecycle, type LedgerReplica, type RevocationReason, type RevokeTarget } from "../ca/index.js";
import { rolloutProblems, type Settings } from "../config/index.js";
import { ArrivalLoop, Renewals } from "../arrival/index.js";
import { credentialFlowOptions, readSecretFile } from "../credentials/settings.js";
import { createMetrics, type Metrics } from "../metrics/metrics.js";
import { loadPolicySet, type PolicySet } from "../policy/index.js";
import { helperDecider, policyDecider } from "../policy/deciders.js";
import { locatePolicyTests, NoPolicyTestsError, requirePassingTests } from "../policy/testing.js";
import { watchPolicyFiles, type PolicyWatcher } from "../policy/watcher.js";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../protocol/index.js";
import { createAuditSink } from "../provision/audit.js";
import type { FlowOptions } from "../provision/flow.js";
import { flowOptionsFrom } from "../provision/flow-options.js";
import { PolicyManager, type ReloadStatus } from "../provision/policy-manager.js";
import { Provisioner } from "../provision/provisioner.js";
import { createRecorder } from "../provision/recorder.js";
import { KvRecords, openHa, type Ha } from "../ha/index.js";
import type { ApprovalEntry, ApprovalStore } from "../provision/approvals.js";
import { WarnThrottle } from "../provision/warn-throttle.js";
import { RpcClient, closeNats, connectNats, redactUrls } from "../transport/index.js";
import type { Decider, DecisionRecord } from "../types/index.js";
import { Closers } from "./closers.js";
import { openSharedLedger, type LedgerStatus } from "./shared-ledger.js";
import { createLogger } from "./logger.js";
import { VERSION } from "./version.js";

export { VERSION };

export interface DaemonHandle {
  settings: Settings;
  provisioner: Provisioner;
  metrics: Metrics;
  policies: PolicyManager;
  /** arrival tracking and guarded rollout; undefined when `arrival` is not configured */
  arrival?: ArrivalLoop;
  /** HA: the certificate ledger's replica of the shared stream; undefined without HA, a ledger, or the stream */
  ledgerReplica?: LedgerReplica;
  /** certificate renewal; undefined when `renewal` is off */
  renewals?: Renewals;
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
  /** HA: how often ledger rows the shared stream lacks are sent again (default 30 s) */
  ledgerBackfillMs?: number;
}

/** Legacy mode: the reference's helper program decides, counted in the reference's helper metrics. */
export function helperDeciderFor(s: Settings, metrics: Metrics, log?: Logger): Decider {
  return helperDecider(
    { command: s.helper!, args: s.helperArgs, timeoutMs: s.helperTimeoutMs, concurrency: s.helperConcurrency },
    {
      time: (seconds) => {
        metrics.helperTime.labels(s.site).observe(seconds);
        metrics.helperSeconds.labels(s.site).observe(seconds);
      },
      shutdownRequested: () => metrics.helperShutdownRequests.labels(s.site).inc(),
      failed: (identity, error) => {
        metrics.helperErrors.labels(s.site).inc();
        // a failing helper defers every node it sees: worth a warning, unlike a policy's defer
        log?.warn({ identity, helper: s.helper }, `helper failed, node deferred: ${error}`);
      },
      changed: (ref) => {
        metrics.policyInfo.reset();
        metrics.policyInfo.labels(s.site, ref.name, ref.version, ref.hash).set(1);
        log?.info({ policy: ref.name, version: ref.version, hash: ref.hash }, "helper changed on disk");
      },
    },
  );
}

/** the admin API's /nodes routes over the provisioner's registry, approval store and operator actions */
export function nodesTarget(p: Provisioner): NodesTarget {
  return {
    list: (q) => p.nodes.list(q),
    show: (id) => {
      const n = p.nodes.show(id);
      const a = p.approvals.get(id);
      if (!n && !a) return undefined;
      const approval = a ? { status: a.status, since: a.since, reason: a.reason, decision: a.decision, grant: a.grant, denial: a.denial } : undefined;
      return { ...(n ?? { identity: id, state: a!.status === "denied" ? "denied" : "awaiting_approval", fired: a!.decision.fired, timeline: [] }), ...(approval ? { approval } : {}) };
    },
    act: (a) => p.act({ ...a, action: a.action as OperatorAction }),
  };
}

export function rulesDirFor(s: Pick<Settings, "rulesDir" | "policiesDir">): string {
  return s.rulesDir ?? resolve(dirname(s.policiesDir), "rules");
}

export async function startDaemon(s: Settings, ov: DaemonOverrides = {}): Promise<DaemonHandle> {
  const log = ov.log ?? createLogger({ level: s.logLevel, file: s.logFile });
  const metrics = createMetrics(s.site);
  const rulesDir = rulesDirFor(s);
  const toDecider = ov.decider ?? policyDecider;
  const credentials = credentialFlowOptions(s);
  const rollout = rolloutProblems(s);
  if (rollout.length) throw new Error(`invalid rollout configuration:\n  ${rollout.join("\n  ")}`);
  const clientJwt = s.protocol === 2 ? readSecretFile(s.clientJwtFile!, "client_jwt").trim() : undefined;

  const load = s.helper
    ? async () => helperDeciderFor(s, metrics, log)
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

  // from here on every part opened is added to closers, so a failure part-way closes what is open
  const closers = new Closers((what, e) => log.warn({ err: e.message }, `closing the ${what} after a failed start failed`));
  const signer = s.pki ? await openSigner(s) : undefined;
  if (signer) closers.add("signer", () => signer.close());
  let nc: NatsConnection;
  // set once built: a reconnect fails the calls whose replies were lost and retries failed nodes now
  let onReconnect = (): void => undefined;
  let onDisconnect = (): void => undefined;
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
        if (type === "reconnect") {
          metrics.natsReconnects.labels(s.site).inc();
          onReconnect();
        }
        if (type === "disconnect") onDisconnect();
        if (type === "disconnect" || type === "reconnect" || type === "error") log.warn({ nats: type, server: typeof data === "string" ? redactUrls(data) : undefined }, `NATS ${type}`);
      },
    });
  } catch (e) {
    return closers.fail(new Error(redactUrls(`cannot connect to the broker ${s.brokers.join(",")}: ${(e as Error).message}`)));
  }
  const conn = nc;
  closers.add("broker connection", () => closeNats(conn));
  const warns = new WarnThrottle(log);
  closers.add("warning summaries", () => warns.stop());
  const rpc = new RpcClient({
    nc,
    identity: s.identity,
    protocol: s.protocol,
    callerJwt: clientJwt,
    // counted by reason (an identity label would let anyone grow the registry); the identity
    // it claims is in the warning and in that node's record
    onRejectedReply: (r) => {
      metrics.invalidReplies.labels(s.site, r.reason).inc();
      warns.warn(`reply/${r.reason}`, { identity: r.identity, step: r.step, reason: r.reason, err: r.detail }, `reply that failed the checks dropped (${r.reason})`);
    },
  });
  rpc.start();
  closers.add("RPC client", () => rpc.close());

  const audit = createAuditSink({
    file: s.auditFile,
    subject: s.auditSubject,
    publish: s.auditSubject ? (subj, data) => conn.publish(subj, data) : undefined,
    onError: (e) => {
      metrics.auditErrors.labels(s.site).inc();
      log.error({ err: e.message }, "audit write failed");
    },
  });
  closers.add("audit log", () => audit.close());

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
      return closers.fail(new Error(`cannot start ${s.activeActive ? "active-active mode" : "leader election"} (needs JetStream on the broker): ${(e as Error).message}`));
    }
    const opened = ha;
    closers.add("HA", () => opened.stop());
  } else metrics.role.labels(s.site, "standalone").set(1);

  // under HA, nodes awaiting approval live in JetStream KV: they survive a restart and a handover, and every instance lists them
  let approvals: ApprovalStore | undefined;
  if (ha) {
    try {
      approvals = await KvRecords.open<ApprovalEntry>({ nc, apiPrefix: s.ha.apiPrefix, replicas: s.ha.replicas, log });
      const store = approvals;
      closers.add("approvals bucket", () => store.close());
    } catch (e) {
      // a Choria Broker gives the provisioning account the election key and nothing else: leader
      // election works there, shared approvals cannot (docs/ha.md)
      log.warn({ err: (e as Error).message }, "cannot open the approvals bucket: nodes awaiting approval are kept in this instance's memory only");
    }
  }

  // under HA every instance's ledger follows one JetStream stream, and a certificate is in it before it leaves
  let replica: LedgerReplica | undefined;
  let ledgerStatus: (() => LedgerStatus) | undefined;
  if (ha && signer?.ledger) {
    try {
      const shared = await openSharedLedger({ nc, ledger: signer.ledger, apiPrefix: s.ha.apiPrefix, replicas: s.ha.replicas, metrics, site: s.site, log, backfillIntervalMs: ov.ledgerBackfillMs });
      replica = shared.replica;
      ledgerStatus = shared.status;
    } catch (e) {
      return closers.fail(e as Error);
    }
    if (replica) {
      const r = replica;
      signer.recordThrough?.(r);
      closers.add("ledger replica", () => r.close());
    }
  }

  let lifecycle: CaLifecycle | undefined;
  if (signer?.ledger) {
    const ledger = signer.ledger;
    try {
      lifecycle = openCaLifecycle(s, ledger, (e) => log.error({ err: e.message }, "could not make the CRL again; the current one stays until its nextUpdate"), replica);
    } catch (e) {
      return closers.fail(new Error(`cannot start the certificate lifecycle (ledger ${ledger.path}): ${(e as Error).message}`));
    }
    const lc = lifecycle;
    closers.add("certificate lifecycle", async () => lc.close());
    metrics.certificateExpiry = () => lc.expiry();
  } else if (s.ca.revokeOnShutdown && s.pki) log.warn("ca.revoke_on_shutdown is set but there is no certificate ledger (ca.ledger): nothing can be revoked");

  let arrival: ArrivalLoop | undefined;
  if (s.arrival) {
    try {
      arrival = new ArrivalLoop({ arrival: s.arrival, rollout: s.rollout }, { site: s.site, identity: s.identity, metrics, log, audit: (r) => audit.arrival(r) });
    } catch (e) {
      return closers.fail(e as Error);
    }
    const loop = arrival;
    loop.policyLoaded(policies.current());
    policies.on("reload", (st: ReloadStatus) => {
      if (st.ok) loop.policyLoaded(policies.current());
    });
    loop.start();
    closers.add("arrival watches", () => loop.stop());
  }

  // record: inventories as policy test fixtures, within the limits (a skip is a note in the record)
  const recorder = s.recordDir
    ? createRecorder(s.recordDir, {
        limits: s.recordLimits,
        notRecorded: (reason, identity, detail) => {
          metrics.recordSkipped.labels(s.site, reason).inc();
          warns.warn(`record/${reason}`, { identity, reason }, detail);
        },
      })
    : undefined;
  if (recorder) closers.add("inventory recorder", () => recorder.close());

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
        identityPattern: s.identityPattern,
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
      onInventory: recorder?.record,
      claims: ha?.claims,
      approvals,
      warns,
      gate: arrival?.gate,
    },
  );
  if (lifecycle && s.ca.revokeOnShutdown) {
    const lc = lifecycle;
    provisioner.on("record", (r: { identity: string; outcome: string }) => {
      if (r.outcome !== "shutdown") return;
      lc.revoke({ identity: r.identity }, "cessationOfOperation").then(
        (revoked) => {
          if (revoked.length) log.info({ identity: r.identity, serials: revoked.map((e) => e.serial) }, "decommissioned node's certificates revoked");
        },
        (e: Error) => log.error({ identity: r.identity, err: e.message }, "could not revoke a decommissioned node's certificates, or not share the revocation (the backfill sends it again)"),
      );
    });
  }

  let renewals: Renewals | undefined;
  let closeHomes: (() => Promise<void>) | undefined;
  if (s.renewal) {
    // renewalProblems (config/) refuses a configuration without these; this is for settings built in code
    if (!arrival || !lifecycle) return closers.fail(new Error("renewal needs arrival.homes and the certificate ledger of a PKI signer"));
    const loop = arrival;
    const ledger = lifecycle.ledger;
    let homes: ReturnType<ArrivalLoop["homeRequests"]>;
    try {
      homes = loop.homeRequests({
        collective: s.renewal.collective,
        timeoutMs: s.renewal.timeoutMs,
        caller: s.renewal.caller,
        onRejectedReply: (r) => metrics.invalidReplies.labels(s.site, r.reason).inc(),
      });
    } catch (e) {
      return closers.fail(new Error(`cannot start certificate renewal: ${(e as Error).message}`));
    }
    closeHomes = () => homes.close();
    closers.add("renewal requests", closeHomes);
    const p = provisioner;
    const claims = ha?.claims;
    const r = new Renewals(s.renewal, {
      site: s.site,
      metrics,
      log,
      audit: (rec) => audit.renew(rec),
      source: ledger,
      call: (identity, agent, action, data) => homes.call(identity, agent, action, data),
      // with no home connected (at start, in an outage) nobody could be reached: wait, spend no tokens
      canRun: () => p.role !== "standby" && !p.isPaused && homes.connected(),
      // active-active: a node accepted is kept claimed (as after configure) until it is back in provisioning
      ...(claims ? { claim: (id: string) => claims.claim(id), release: (id: string, accepted: boolean) => claims.release(id, accepted ? "configure" : "error") } : {}),
    });
    provisioner.on("record", (rec: DecisionRecord) => r.recorded(rec));
    closers.add("certificate renewal", () => r.stop());
    renewals = r;
  }

  onReconnect = () => {
    const lost = rpc.reconnected();
    if (lost) log.info({ calls: lost }, "asking again for replies lost with the broker connection");
    provisioner.retryNow();
  };
  onDisconnect = () => provisioner.brokerUnsettled();

  let admin: AdminServer;
  try {
    admin = await startAdminServer({ listen: s.adminListen, token: s.adminToken, allowRemote: s.adminAllowRemote, registry: metrics.registry, target: {
        status: () => ({ ...provisioner.status(), brokers: s.brokers.map(redactUrls), ...(arrival ? { arrival: arrival.status() } : {}), ...(renewals ? { renewal: renewals.status() } : {}), ...(ledgerStatus ? { ledger: ledgerStatus() } : {}) }) as never,
        pause: () => provisioner.pause(),
        resume: () => provisioner.resume(),
        nodes: nodesTarget(provisioner),
        ca: lifecycle ? adminCa(lifecycle) : undefined,
        ...(arrival ? { clearBrokerSet: (name: string) => arrival.clearBrokerSet(name), rollout: (a: "accept" | "revert") => arrival.rolloutAction(a) } : {}),
      },
    });
  } catch (e) {
    return closers.fail(new Error(`cannot start the admin endpoint on ${s.adminListen}: ${(e as Error).message}`));
  }
  closers.add("admin endpoint", () => admin.close());
  if (!isLoopbackListen(s.adminListen)) log.warn({ listen: s.adminListen }, "admin.listen is not a loopback address: /status and /metrics are open to the network, and the admin token (if any) travels over plain HTTP");

  let watcher: PolicyWatcher | undefined;
  try {
    if (s.watch && !s.helper) {
      const w = watchPolicyFiles([s.policiesDir, ...(existsSync(rulesDir) ? [rulesDir] : [])], (paths) => {
        log.info({ changed: paths.length }, "policy files changed, reloading");
        void policies.reload();
      });
      closers.add("policy watcher", () => w.close());
      await w.ready;
      watcher = w;
    }
    // in leader mode this makes the provisioner a standby before its intake and discovery start
    await ha?.start(provisioner);
    provisioner.start();
    renewals?.start();
  } catch (e) {
    closers.add("provisioner", () => provisioner.stop(0));
    return closers.fail(e as Error);
  }
  nc.publish(lifecycleSubject("startup", "provisioner"), encodeLifecycle(newLifecycleEvent("startup", s.identity, "provisioner", { version: VERSION }), "choria"));
  log.info({ identity: s.identity, brokers: s.brokers.map(redactUrls), admin: admin.url, workers: s.workers, pki: s.pki, ca: s.pki ? s.ca.type : "off", jwt: s.jwt, ed25519: s.ed25519, protocol: s.protocol }, "provisioner started");

  let stopped = false;
  return {
    settings: s,
    provisioner,
    metrics,
    policies,
    arrival,
    ledgerReplica: replica,
    renewals,
    admin,
    nc,
    log,
    reload: () => policies.reload(),
    async stop(drainMs = 30_000) {
      if (stopped) return;
      stopped = true;
      await watcher?.close();
      await renewals?.stop();
      await provisioner.stop(drainMs);
      await recorder?.close();
      // after the drain: a successor must not pick up nodes we were still finishing
      await ha?.stop();
      await closeHomes?.();
      await arrival?.stop();
      await approvals?.close();
      // after the drain, so every certificate signed was acknowledged; before the connection closes
      await replica?.close();
      await rpc.close();
      await audit.close();
      await admin.close();
      await closeNats(conn);
      lifecycle?.close();
      await signer?.close();
      log.info("provisioner stopped");
      log.flush?.();
    },
  };
}

/** the admin endpoint's view of the certificate lifecycle: the CRL, and revocation by serial or identity */
function adminCa(lc: CaLifecycle): AdminCa {
  const revoke = async (target: RevokeTarget, reason: RevocationReason): Promise<string[]> => {
    try {
      return (await lc.revoke(target, reason)).map((e) => e.serial);
    } catch (e) {
      if (e instanceof ReplicationError) throw new AdminUnavailableError(`revoked in this instance's ledger and CRL, but not yet in the shared ledger (it is sent again by itself): ${e.message}`);
      throw e;
    }
  };
  return {
    crl: () => lc.crl()?.pem,
    revoke(body) {
      const reason = (body.reason ?? "unspecified") as RevocationReason;
      if (!REVOCATION_REASONS.includes(reason)) throw new AdminRequestError(`reason must be one of ${REVOCATION_REASONS.join(", ")}`);
      if (typeof body.serial === "string" && body.serial !== "" && body.identity === undefined) return revoke({ serial: body.serial }, reason);
      if (typeof body.identity === "string" && body.identity !== "" && body.serial === undefined) return revoke({ identity: body.identity }, reason);
      throw new AdminRequestError('give exactly one of "serial" or "identity" (a non-empty string)');
    },
  };
}
