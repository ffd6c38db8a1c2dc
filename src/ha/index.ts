/**
 * High availability: one entry point the daemon wires around the provisioner.
 *  - "leader": reference-compatible leader election; the instance is a standby (no intake, no
 *    discovery) until it wins, and goes back to standby (dropping queued work) when it loses.
 *  - "active-active": every instance is active; per-node claims make sure each node is
 *    provisioned by one instance only.
 * The provisioner is reached only through HaTarget, so ha/ does not depend on provision/.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "nats";
import { Claims, type ClaimHooks, type ClaimsOptions } from "./claims.js";
import { Elector, type ElectorOptions } from "./elector.js";
import { silentLogger, type HaLogger } from "./kv.js";

export { Elector, ELECTION_BUCKET, ELECTION_KEY, DEFAULT_ELECTION_TTL_MS, leaseMarginMs, type ElectorOptions, type ElectorState, type LeadershipChange } from "./elector.js";
export { Claims, CLAIMS_BUCKET, DEFAULT_CLAIM_TTL_MS, claimKey, identityOfClaimKey, type ClaimHooks, type ClaimsOptions, type ClaimStats } from "./claims.js";
export { openBucket, isWrongRevision, type HaLogger } from "./kv.js";
export { KvRecords, APPROVALS_BUCKET, type KvRecordsOptions } from "./records.js";
export { StreamLog, LEDGER_STREAM, LEDGER_SUBJECT, type StreamLogOptions } from "./ledger-stream.js";

export type HaMode = "leader" | "active-active";

/** What HA drives: Provisioner satisfies this. */
export interface HaTarget {
  setActive(active: boolean, role: string): void;
  /** run a discovery now (the reference discovers right after winning an election) */
  discoverNow?(): Promise<unknown>;
}

export interface HaOptions {
  nc: NatsConnection;
  mode: HaMode;
  /** the provisioner identity; the KV value adds host, pid and a random part to stay unique */
  identity: string;
  apiPrefix?: string;
  log?: HaLogger;
  election?: Partial<Omit<ElectorOptions, "nc" | "name" | "log" | "apiPrefix">>;
  claims?: Partial<Omit<ClaimsOptions, "nc" | "name" | "log" | "apiPrefix">>;
  /** called on every role change, after the target was told (metrics, status) */
  onRole?(role: string, previous: string): void;
}

export interface Ha {
  readonly mode: HaMode;
  /** the value this instance writes into KV keys */
  readonly name: string;
  readonly role: string;
  /** active-active only: hand to the Provisioner as deps.claims */
  readonly claims?: Claims;
  readonly elector?: Elector;
  /** sets the target's initial role (standby in leader mode) and starts campaigning */
  start(target: HaTarget): Promise<void>;
  /** resigns (deletes the election key) or releases claims; call after the provisioner drained */
  stop(): Promise<void>;
}

/** host, pid and a random part: two instances never write the same value, even in one process */
export function instanceName(identity: string): string {
  return `${identity}@${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

/** Opens the KV bucket(s) for the mode; throws when JetStream is not available. */
export async function openHa(o: HaOptions): Promise<Ha> {
  const log = o.log ?? silentLogger;
  const name = instanceName(o.identity);
  let role = "standalone";
  let target: HaTarget | undefined;
  const setRole = (active: boolean, next: string): void => {
    const prev = role;
    role = next;
    target?.setActive(active, next);
    o.onRole?.(next, prev);
  };

  if (o.mode === "active-active") {
    const claims = await Claims.open({ ...o.claims, nc: o.nc, name, apiPrefix: o.apiPrefix, log });
    log.info({ bucket: claims.bucket, ttlMs: claims.ttlMs, name }, "active-active mode: nodes are shared through per-node claims");
    return {
      mode: o.mode,
      name,
      claims,
      get role() {
        return role;
      },
      async start(t) {
        target = t;
        setRole(true, "active");
      },
      async stop() {
        await claims.close();
      },
    };
  }

  const elector = await Elector.open({ ...o.election, nc: o.nc, name, apiPrefix: o.apiPrefix, log });
  log.info({ bucket: elector.bucket, key: elector.key, ttlMs: elector.ttlMs, campaignMs: elector.intervalMs, name }, "leader election: starting as standby");
  elector.on("change", (c) => {
    if (c.leader) {
      log.warn({ election: elector.key, reason: c.reason }, "became leader: provisioning is active");
      setRole(true, "leader");
      void target?.discoverNow?.().catch((e: Error) => log.error({ err: e.message }, "discovery after winning the election failed"));
    } else {
      log.warn({ election: elector.key, reason: c.reason }, "lost leadership: standing by, queued nodes dropped");
      setRole(false, "standby");
    }
  });
  return {
    mode: o.mode,
    name,
    elector,
    get role() {
      return role;
    },
    async start(t) {
      target = t;
      setRole(false, "standby");
      elector.start();
    },
    async stop() {
      await elector.stop();
    },
  };
}
