/**
 * Metric definitions. The reference provisioner's names, types and `site` label are kept
 * exactly (choria_provisioner_*, counters without a _total suffix) so its Grafana dashboard
 * keeps working; the policy, reload, CSR and signing metrics are this project's own.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { SumCountSummary } from "./sum-count-summary.js";
import { BucketHistogram } from "./bucket-histogram.js";

export interface Metrics {
  registry: Registry;
  site: string;
  // reference provisioner names
  paused: Gauge<"site">;
  discovered: Counter<"site">;
  eventDiscovered: Counter<"site">;
  discoverCycles: Counter<"site">;
  discoveryErrors: Counter<"site">;
  provisionErrors: Counter<"site">;
  provisioned: Counter<"site">;
  busyWorkers: Gauge<"site">;
  workQueueEntries: Gauge<"site">;
  waitingNodes: Gauge<"site">;
  /** what the three gauges above read at scrape time (the provisioner's queue and workers); unset: they stay as set */
  work?: () => { queued: number; waiting: number; busy: number };
  /** the reference's summary: `_sum` and `_count` only */
  rpcTime: SumCountSummary<"site" | "rpc">;
  /** the same requests' distribution, aggregatable across instances */
  rpcSeconds: BucketHistogram<"site" | "rpc">;
  rpcErrors: Counter<"site" | "rpc">;
  helperTime: SumCountSummary<"site">;
  helperSeconds: BucketHistogram<"site">;
  helperErrors: Counter<"site">;
  helperShutdownRequests: Counter<"site">;
  // this project
  registrationDiscovered: Counter<"site">;
  intakeErrors: Counter<"site" | "source" | "reason">;
  queueRejected: Counter<"site" | "reason">;
  policyEvaluations: Counter<"site" | "policy" | "version">;
  /** one per policy evaluation, by the outcome it decided: a node decided again (a defer, a retry) counts again; nodes by their state are node_states */
  policyDecisions: Counter<"site" | "outcome" | "policy" | "version">;
  policyEvalTime: BucketHistogram<"site">;
  policyReloads: Counter<"site" | "result">;
  policyInfo: Gauge<"site" | "policy" | "version" | "hash">;
  csrRefusals: Counter<"site" | "reason">;
  jwtRefusals: Counter<"site" | "reason">;
  signTime: BucketHistogram<"site" | "signer">;
  signErrors: Counter<"site" | "signer">;
  nodeDuration: BucketHistogram<"site" | "outcome">;
  invalidReplies: Counter<"site" | "reason">;
  conflicts: Counter<"site" | "step">;
  lockContention: Counter<"site">;
  natsReconnects: Counter<"site">;
  auditErrors: Counter<"site">;
  recordSkipped: Counter<"site" | "reason">;
  role: Gauge<"site" | "role">;
  nodeStates: Gauge<"site" | "state">;
  operatorActions: Counter<"site" | "action" | "result">;
  certificatesExpiring: Gauge<"site" | "within">;
  certificateEarliestNotAfter: Gauge<"site">;
  /** what the certificate gauges read at scrape time (the CA ledger's summary); unset: the gauges stay empty */
  certificateExpiry?: () => { within7d: number; within30d: number; earliestNotAfter?: number } | undefined;
  signerUp: Gauge<"site">;
  ledgerReplicationProblems: Counter<"site" | "reason">;
  ledgerUnreplicatedRows: Gauge<"site">;
  /** what the unreplicated gauge reads at scrape time (the HA replica); unset: the gauge stays empty */
  ledgerUnreplicated?: () => number;
  // arrival and guarded rollout (arrival/)
  arrivals: Counter<"site" | "result" | "policy_version" | "broker_set">;
  arrivalTime: BucketHistogram<"site" | "broker_set">;
  arrivalsPending: Gauge<"site">;
  lostNodes: Gauge<"site">;
  homeWatches: Gauge<"site" | "home">;
  rolloutState: Gauge<"site" | "policy_version" | "state">;
  brokerSetUnhealthy: Gauge<"site" | "broker_set">;
  // certificate renewal (arrival/renewal.ts)
  renewals: Counter<"site" | "result" | "reason">;
  renewalsPending: Gauge<"site">;
}

export function createMetrics(site = "default", o: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (o.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: "choria_provisioner_" });
  const reg = [registry];
  const counter = <L extends string>(name: string, help: string, labels: L[]) => new Counter<L>({ name, help, labelNames: labels, registers: reg });
  const gauge = <L extends string>(name: string, help: string, labels: L[]) => new Gauge<L>({ name, help, labelNames: labels, registers: reg });
  const s: ["site"] = ["site"];
  const workGauge = (name: string, help: string, key: "queued" | "waiting" | "busy") =>
    new Gauge<"site">({
      name,
      help,
      labelNames: s,
      registers: reg,
      collect() {
        const w = m.work?.();
        if (w) this.labels(site).set(w[key]);
      },
    });
  const m: Metrics = {
    registry,
    site,
    paused: gauge("choria_provisioner_paused", "Indicates if the provisioner is paused", s),
    discovered: counter("choria_provisioner_discovered", "How many nodes were found through discovery", s),
    eventDiscovered: counter("choria_provisioner_event_discovered", "How many nodes were found through receiving an event about them", s),
    discoverCycles: counter("choria_provisioner_discover_cycles", "How many discovery cycles were ran", s),
    discoveryErrors: counter("choria_provisioner_discovery_errors", "How many discovery related errors were encountered", s),
    provisionErrors: counter("choria_provisioner_provision_errors", "How many provision related errors were encountered", s),
    provisioned: counter("choria_provisioner_provisioned", "How many nodes were successfully provisioned", s),
    busyWorkers: workGauge("choria_provisioner_busy_workers", "How many workers are busy provisioning nodes", "busy"),
    workQueueEntries: workGauge("choria_provisioner_work_queue_entries", "Number of nodes on the work queue waiting to be provisioned", "queued"),
    waitingNodes: workGauge("choria_provisioner_waiting_nodes", "The number of nodes currently waiting to be provisioned", "waiting"),
    rpcTime: new SumCountSummary("choria_provisioner_rpc_time", "How long it took to perform RPC requests", ["site", "rpc"], registry),
    rpcSeconds: new BucketHistogram("choria_provisioner_rpc_seconds", "Duration of requests that got a reply", ["site", "rpc"], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registry),
    rpcErrors: counter("choria_provisioner_rpc_errors", "How many rpc related errors were encountered", ["site", "rpc"]),
    helperTime: new SumCountSummary("choria_provisioner_helper_time", "How long it took to run the helper", ["site"], registry),
    helperSeconds: new BucketHistogram("choria_provisioner_helper_seconds", "Run time of the legacy helper", ["site"], [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registry),
    helperErrors: counter("choria_provisioner_helper_errors", "How many helper related errors were encountered", s),
    helperShutdownRequests: counter("choria_provisioner_helper_shutdown_requests", "How many times the helper requested a node shutdown", s),
    registrationDiscovered: counter("choria_provisioner_registration_discovered", "How many nodes were found through registration data", s),
    intakeErrors: counter("choria_provisioner_intake_errors", "Bad messages received by intake, by source and reason", ["site", "source", "reason"]),
    queueRejected: counter("choria_provisioner_queue_rejected", "Nodes not queued, by reason (full, held, stale)", ["site", "reason"]),
    policyEvaluations: counter("choria_provisioner_policy_evaluations", "Policy evaluations", ["site", "policy", "version"]),
    policyDecisions: counter("choria_provisioner_policy_decisions", "Policy evaluations by the outcome decided and policy version; a node decided again counts again", ["site", "outcome", "policy", "version"]),
    policyEvalTime: new BucketHistogram("choria_provisioner_policy_eval_seconds", "Policy evaluation time", ["site"], [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05], registry),
    policyReloads: counter("choria_provisioner_policy_reloads", "Policy reloads by result (ok, error)", ["site", "result"]),
    policyInfo: gauge("choria_provisioner_policy_info", "The policy in force (value 1)", ["site", "policy", "version", "hash"]),
    csrRefusals: counter("choria_provisioner_csr_refusals", "CSRs refused, by reason", ["site", "reason"]),
    // provisioning JWT check codes (bad_signature, expired, ...) and gen25519_signature: a node whose credentials did not verify
    jwtRefusals: counter("choria_provisioner_jwt_refusals", "Nodes refused because their provisioning JWT or gen25519 signature did not verify, by reason", ["site", "reason"]),
    signTime: new BucketHistogram("choria_provisioner_sign_seconds", "Certificate signing time", ["site", "signer"], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registry),
    signErrors: counter("choria_provisioner_sign_errors", "Signing failures (CA unavailable, timeout)", ["site", "signer"]),
    nodeDuration: new BucketHistogram("choria_provisioner_node_seconds", "Time to process one node, by outcome", ["site", "outcome"], [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registry),
    invalidReplies: counter("choria_provisioner_invalid_replies", "Replies dropped as invalid, by reason (undecodable, request_mismatch, wrong_sender, bad_body, not_pong)", ["site", "reason"]),
    conflicts: counter("choria_provisioner_conflicts_total", "Nodes for which more than one server answered (a cloned twin or an impostor), by the step that showed it", ["site", "step"]),
    lockContention: counter("choria_provisioner_lock_contention", "Nodes whose provisioning lock was held by another provisioner", s),
    natsReconnects: counter("choria_provisioner_nats_reconnects", "NATS reconnections", s),
    auditErrors: counter("choria_provisioner_audit_errors", "Audit lines (decision records, configure lines, ...) that could not be written or published", s),
    recordSkipped: counter("choria_provisioner_record_skipped_total", "Inventories the recorder (record) did not write, by reason (too_deep, too_large, write_failed); the node is provisioned all the same", ["site", "reason"]),
    role: gauge("choria_provisioner_role", "1 for the role this instance has (leader, standby, active)", ["site", "role"]),
    nodeStates: gauge("choria_provisioner_node_states", "Nodes this instance knows, by state (queued, in_flight, awaiting_approval, held, failed, ...)", ["site", "state"]),
    operatorActions: counter("choria_provisioner_operator_actions", "Operator actions through the admin API (approve, deny, retry, clear, forget), by result", ["site", "action", "result"]),
    certificatesExpiring: new Gauge({
      name: "choria_provisioner_certificates_expiring",
      help: "Certificates in the ledger, not revoked, that expire within 7 or 30 days",
      labelNames: ["site", "within"],
      registers: reg,
      collect() {
        const e = m.certificateExpiry?.();
        if (!e) return;
        this.labels(site, "7d").set(e.within7d);
        this.labels(site, "30d").set(e.within30d);
      },
    }),
    certificateEarliestNotAfter: new Gauge({
      name: "choria_provisioner_certificate_earliest_not_after_seconds",
      help: "Unix time of the earliest notAfter among certificates in the ledger not yet expired nor revoked (absent when there is none)",
      labelNames: ["site"],
      registers: reg,
      collect() {
        const e = m.certificateExpiry?.();
        if (e?.earliestNotAfter === undefined) {
          this.reset();
          return;
        }
        this.labels(site).set(Math.floor(e.earliestNotAfter / 1000));
      },
    }),
    signerUp: gauge("choria_provisioner_signer_up", "1 while the signer answers, 0 while its circuit breaker is open", s),
    ledgerReplicationProblems: counter("choria_provisioner_ledger_replication_problems", "HA ledger replication: rows the stream did not acknowledge (publish), stream messages that are not ledger rows (invalid_message), batches the local ledger refused (apply)", ["site", "reason"]),
    ledgerUnreplicatedRows: new Gauge({
      name: "choria_provisioner_ledger_unreplicated_rows",
      help: "HA: rows of this instance's certificate ledger that the shared stream does not hold yet (the backfill sends them)",
      labelNames: ["site"],
      registers: reg,
      collect() {
        const n = m.ledgerUnreplicated?.();
        if (n !== undefined) this.labels(site).set(n);
      },
    }),
    arrivals: counter("choria_provisioner_arrivals_total", "Restarted nodes by what became of them at home (arrived, lost, arrived_late, unconfirmed), by the policy version that decided them and their broker set", ["site", "result", "policy_version", "broker_set"]),
    arrivalTime: new BucketHistogram("choria_provisioner_arrival_seconds", "Time from a node's accepted restart to its startup event at home", ["site", "broker_set"], [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300], registry),
    arrivalsPending: gauge("choria_provisioner_arrivals_pending", "Restarted nodes not yet seen at home and not yet past the deadline", s),
    lostNodes: gauge("choria_provisioner_lost_nodes", "Nodes reported lost and not seen at home since", s),
    homeWatches: gauge("choria_provisioner_home_watch_connected", "1 while the arrival watch on a home broker is connected", ["site", "home"]),
    rolloutState: gauge("choria_provisioner_rollout_state", "1 for the guarded rollout's state (trusted, canary, reverted, paused) and the version it concerns", ["site", "policy_version", "state"]),
    brokerSetUnhealthy: gauge("choria_provisioner_broker_set_unhealthy", "1 while a broker set is unhealthy and its nodes are deferred", ["site", "broker_set"]),
    renewals: counter("choria_provisioner_renewals_total", "Certificate renewals: requested (the node accepted reprovision), ok (it was provisioned again with a new certificate), failed (by reason: refused, unreachable, timeout, not_reprovisioned, error), skipped (validity_within_window: never renewed)", ["site", "result", "reason"]),
    renewalsPending: gauge("choria_provisioner_renewals_pending", "Nodes asked to renew and not yet provisioned again", s),
  };
  m.paused.labels(site).set(0);
  // every counter exists at 0 from start-up: an alert on rate(x[15m]) == 0 needs a series to fire
  // on a daemon that has done nothing yet (an absent series makes the rate absent, not 0)
  for (const c of [m.discovered, m.eventDiscovered, m.discoverCycles, m.discoveryErrors, m.provisionErrors, m.provisioned, m.helperErrors, m.helperShutdownRequests, m.registrationDiscovered, m.lockContention, m.natsReconnects, m.auditErrors]) c.labels(site).inc(0);
  for (const result of ["ok", "error"]) m.policyReloads.labels(site, result).inc(0);
  for (const reason of ["too_deep", "too_large", "write_failed"]) m.recordSkipped.labels(site, reason).inc(0);
  return m;
}
