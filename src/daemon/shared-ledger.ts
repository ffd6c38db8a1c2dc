/**
 * Under HA, the certificate ledger is shared through a JetStream stream on the daemon's broker
 * (docs/ca.md, "The ledger under HA"): this opens the stream, puts the replica between the signer
 * and the local ledger, and counts and logs what goes wrong. A broker that will not give the
 * provisioner the stream (a Choria Broker's provisioning account) leaves each instance with its
 * own ledger, said loudly at start and in /status.
 */
import type { Logger } from "pino";
import type { NatsConnection } from "nats";
import { LedgerReplica, type CertificateLedger, type LedgerReplicaStatus } from "../ca/index.js";
import { StreamLog } from "../ha/index.js";
import type { Metrics } from "../metrics/metrics.js";

export interface SharedLedgerOptions {
  nc: NatsConnection;
  ledger: CertificateLedger;
  apiPrefix?: string;
  replicas?: number;
  metrics: Metrics;
  site: string;
  log: Logger;
  /** how often rows the stream lacks are sent again (tests shorten it) */
  backfillIntervalMs?: number;
}

/** what /status shows of the ledger */
export type LedgerStatus = ({ shared: true } & LedgerReplicaStatus) | { shared: false; reason: string };

/** the started replica, or undefined (and a warning) when the stream cannot be opened */
export async function openSharedLedger(o: SharedLedgerOptions): Promise<{ replica?: LedgerReplica; status(): LedgerStatus }> {
  let stream: StreamLog;
  try {
    stream = await StreamLog.open({ nc: o.nc, apiPrefix: o.apiPrefix, replicas: o.replicas });
  } catch (e) {
    const reason = `cannot open the ledger stream: ${(e as Error).message}`;
    o.log.warn({ err: (e as Error).message, ledger: o.ledger.path }, "the certificate ledger is NOT shared between the HA instances: each lists only what it issued (docs/ca.md)");
    return { status: () => ({ shared: false, reason }) };
  }
  const replica = new LedgerReplica(o.ledger, stream, { backfillIntervalMs: o.backfillIntervalMs });
  replica.on("problem", (reason, e, seq) => {
    o.metrics.ledgerReplicationProblems.labels(o.site, reason).inc();
    o.log.warn({ stream: stream.stream, reason, seq, err: e.message }, reason === "invalid_message" ? "message in the ledger stream that is not a ledger row skipped" : "ledger replication problem");
  });
  try {
    await replica.start();
  } catch (e) {
    await replica.close();
    throw new Error(`cannot follow the ledger stream ${stream.stream}: ${(e as Error).message}`);
  }
  o.metrics.ledgerUnreplicated = () => replica.status().unreplicated;
  o.log.info({ stream: stream.stream, incarnation: stream.incarnation, ledger: o.ledger.path }, "certificate ledger shared through JetStream");
  return { replica, status: () => ({ shared: true, ...replica.status() }) };
}
