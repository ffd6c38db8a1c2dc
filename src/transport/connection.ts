/**
 * NATS connection handling shared by the provisioner and the simulator: reconnect forever
 * with jittered backoff (a provisioner must outlive broker restarts), optional TLS and
 * credentials, and drain on close so in-flight replies are not lost.
 */
import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "nats";

/**
 * What the provisioner's intake and status need of a broker connection: subscriptions and
 * whether it is up. A connectNats() connection is one; nats stays a package of transport/.
 */
export type BrokerConnection = Pick<NatsConnection, "subscribe" | "isClosed">;
export type BrokerSubscription = ReturnType<BrokerConnection["subscribe"]>;

export interface NatsOptions {
  servers: string | string[];
  /** connection name; Choria servers use their identity */
  name?: string;
  /** NATS auth token (provisioning-mode servers send their JWT here) */
  token?: string;
  user?: string;
  pass?: string;
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string; insecure?: boolean };
  /** ms between reconnect attempts (jitter is added); default 1000 */
  reconnectWaitMs?: number;
  /** called on connection status changes, for logs and metrics */
  onStatus?: (type: string, data: unknown) => void;
  /** default: forever */
  maxReconnectAttempts?: number;
  timeoutMs?: number;
}

export async function connectNats(o: NatsOptions): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: o.servers,
    name: o.name,
    maxReconnectAttempts: o.maxReconnectAttempts ?? -1,
    reconnectTimeWait: o.reconnectWaitMs ?? 1000,
    reconnectJitter: 500,
    waitOnFirstConnect: false,
    pingInterval: 20_000,
    timeout: o.timeoutMs ?? 5000,
    noEcho: false,
  };
  if (o.token) opts.token = o.token;
  if (o.user) {
    opts.user = o.user;
    opts.pass = o.pass;
  }
  if (o.credsFile) opts.authenticator = credsAuthenticator(readFileSync(o.credsFile));
  if (o.tls) {
    opts.tls = {
      caFile: o.tls.caFile,
      certFile: o.tls.certFile,
      keyFile: o.tls.keyFile,
    };
    if (o.tls.insecure) (opts.tls as Record<string, unknown>).rejectUnauthorized = false;
  }
  const nc = await connect(opts);
  if (o.onStatus) {
    const cb = o.onStatus;
    void (async () => {
      for await (const s of nc.status()) cb(s.type, s.data);
    })().catch(() => undefined);
  }
  return nc;
}

/** How long closeNats waits for a drain: a healthy broker drains in a round trip or two. */
export const DRAIN_DEADLINE_MS = 2000;

/**
 * Drains (flushes subscriptions and pending publishes) for up to `deadlineMs`, then closes; never
 * throws. The deadline and the close are what make stopping bounded: with the broker gone,
 * nats.js's drain either waits for a reconnect that may never come, or gives up and resolves
 * without closing, leaving the reconnect loop to hold the process open for ever (issue 23).
 */
export async function closeNats(nc: NatsConnection | undefined, deadlineMs = DRAIN_DEADLINE_MS): Promise<void> {
  if (!nc || nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([nc.drain().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}
