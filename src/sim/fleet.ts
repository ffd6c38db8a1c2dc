/**
 * A fleet of simulated provisioning-mode Choria servers in one process. Nodes are
 * multiplexed over one NATS connection or a few (shards.ts); their registration and alive
 * messages come from one sweep (periodic.ts). No per-node subscriptions or timers, so 100k
 * nodes cost a few hundred MB at most.
 */
import type { EventEmitter } from "node:events";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../protocol/index.js";
import { leavesProvisioning } from "./agents/choria-provision.js";
import { Dispatcher } from "./dispatcher.js";
import { factsResolver, identityOf, upgradableOf, versionOf, type Facts, type FactsInput } from "./facts.js";
import { assignFaults, faultSet, hasFault, type FaultOptions } from "./faults.js";
import { KeyPool } from "./keypool.js";
import { Mode, SimNode } from "./node.js";
import { periodicMessages } from "./periodic.js";
import { hash32 } from "./prng.js";
import { safeJwtClaims, writeRecords } from "./record.js";
import { FleetStats, waitForReport, type FleetReport } from "./report.js";
import type { SimRuntime } from "./runtime.js";
import { publishStartups } from "./startup.js";
import { HomeLinks } from "./home.js";
import { homeRequest, type HomeAgentDeps } from "./home-agent.js";
import { closeShards, connectShards, flushShards, shardPublisher, subscribeShards } from "./shards.js";

export interface FleetOptions {
  /** NATS URL(s), comma separated */
  servers: string;
  nodes: number;
  /** provisioning token; when set, choria_provision requests must carry exactly this */
  token?: string;
  seed?: number;
  facts?: FactsInput;
  /**
   * NATS connections to spread the fleet over; default 1. Each extra connection splits the
   * fleet's traffic into more, smaller socket writes for nats-server: at 50k nodes, 4 connections
   * cost nats-server a third more CPU than 1 and end-to-end throughput 3–9% (`npm run bench`).
   */
  connections?: number;
  lifecycleFormat?: "cloudevent" | "choria";
  /** publish file_content registration data: first after 1–4 s, then every intervalMs (default 120 s) */
  registration?: boolean | { intervalMs: number };
  /**
   * alive lifecycle events while a node is in provisioning mode, as a server sends them: the first
   * at a random point within firstWithinMs of its startup (default 29/30 of intervalMs: the
   * server's 0–29 minutes), then every intervalMs (default 30 minutes). Off by default, so that a test's
   * nodes are announced only by their startup events.
   */
  alive?: boolean | { intervalMs: number; firstWithinMs?: number };
  /** also publish registration on the pre-2021 choria.provisioning_data subject */
  legacyRegistration?: boolean;
  /** real wait between a restart/shutdown reply and its effect; default Go's splay in seconds */
  restartDelayMs?: number;
  /** a node stranded at home retries within this long of its broker coming back (default 5000, go-choria's backoff ceiling) */
  homeRetryMs?: number;
  /** spread startup events over this long; default 0 up to 1000 nodes, else nodes/10 ms */
  startupRampMs?: number;
  faults?: FaultOptions;
  /** write each node's RecordedInventory here at start */
  recordDir?: string;
  /** every node reports this version instead of the seeded mix */
  version?: string;
  /** every node allows release_update (or none does) instead of the seeded mix */
  upgradable?: boolean;
  /** raw provisioning.jwt contents returned by the jwt action; absent: "Provisioning JWT file does not exist" */
  provisioningJwt?: string;
  /**
   * Choria protocol version the nodes speak, default 1. A real server provisions over v2 only
   * when its provisioning JWT has `v2: true`, so protocol 2 needs such a provisioningJwt.
   * Each node accepts only its own version and drops the other (a wrong_protocol violation).
   */
  protocol?: 1 | 2;
  keyPoolSize?: number;
  /** false: do not cache pool keys on disk */
  keyCacheDir?: string | false;
  /** identity domain, default example.net */
  domain?: string;
  /**
   * Answer a directed request for a node that is not listening (absent, dead, restarted into
   * server mode) with the broker's 503 no-responders status, as nats-server does for a subject
   * nobody is subscribed to; default true. The fleet shares one wildcard subscription, so the
   * broker cannot do it for us. Turn it off when several fleets share a broker: each would
   * answer for the other's nodes.
   */
  noResponders?: boolean;
  /**
   * these identities instead of generated ones. A second fleet with another seed and some of the
   * first fleet's identities is a set of twins (cloned images) or, with announce false, an
   * impostor answering on their subjects: different keys, a different connection
   */
  identities?: string[];
  /** false: publish no startup events (an impostor only answers); default true */
  announce?: boolean;
}

export interface Fleet {
  identities: string[];
  faultsOf(identity: string): Set<string>;
  /** true for a node that drops every reply (drop with drop_probability 1): no provisioner can ever reach it */
  neverAnswers(identity: string): boolean;
  report(): FleetReport;
  /**
   * "configured" (with the identity and the serial of the certificate delivered, if any), "restarted" (left provisioning mode), "arrived" (published its startup event at
   * home), "stranded" (no home broker reachable, or refused there), "shutdown", "died", "startup"
   * with the identity; "request" and "reply" with the identity and "agent#action"; "violation" with
   * {identity, kind, detail}; "update" on any change
   */
  events: EventEmitter;
  /** resolves once pred(report) holds, evaluated on every fleet change; rejects after timeoutMs */
  waitFor(pred: (r: FleetReport) => boolean, timeoutMs: number): Promise<FleetReport>;
  republishStartup(identity?: string): void;
  /**
   * The node's process crashes and starts again at once in provisioning mode: a new process with
   * no lock, no ECDH key and nothing configured, which publishes a startup event. Requests the
   * old process had taken go unanswered.
   */
  crash(identity: string): void;
  /** all startup events have been published and the broker has them (as after flush()) */
  startupComplete: Promise<void>;
  /** resolves once everything published so far, including this turn's batched messages, has reached the broker */
  flush(): Promise<void>;
  keyPool: { size: number; generated: number; generatedMs: number };
  stop(): Promise<void>;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1) throw new RangeError(`nodes must be a positive integer, got ${o.nodes}`);
  const protocol = o.protocol ?? 1;
  if (protocol !== 1 && protocol !== 2) throw new RangeError(`protocol must be 1 or 2, got ${String(protocol)}`);
  if (protocol === 2) {
    // the server reads its own JWT unverified to pick the protocol (§3): we do the same
    if (safeJwtClaims(o.provisioningJwt)?.v2 !== true) throw new RangeError("protocol 2 nodes need a provisioningJwt whose claims have v2: true, as a real server only provisions over v2 then");
  }
  const seed = o.seed ?? 1;
  const periodic = periodicMessages({ ...o, protocol }, seed);
  const nShards = Math.max(1, Math.min(o.nodes, o.connections ?? 1));
  const format = o.lifecycleFormat ?? "cloudevent";
  const faults = o.faults ?? {};
  const keysP = KeyPool.create({ size: o.keyPoolSize, cacheDir: o.keyCacheDir });

  if (o.identities && o.identities.length !== o.nodes) throw new RangeError(`identities has ${o.identities.length} names for ${o.nodes} nodes`);
  const nodes: SimNode[] = [];
  const byIdentity = new Map<string, SimNode>();
  for (let i = 0; i < o.nodes; i++) {
    const identity = o.identities?.[i] ?? identityOf(i, o.domain);
    const node = new SimNode({
      index: i,
      identity,
      shard: i % nShards,
      keyIndex: hash32(`${seed}/key/${identity}`),
      faults: assignFaults(seed, identity, faults),
      version: o.version ?? versionOf(seed, identity),
      upgradable: o.upgradable ?? upgradableOf(seed, identity),
    });
    nodes.push(node);
    byIdentity.set(identity, node);
  }
  const stats = new FleetStats(seed, nodes);
  const resolveFacts = factsResolver(seed, o.facts);

  const servers = o.servers.split(",").map((s) => s.trim()).filter(Boolean);
  const [keys, shards] = await Promise.all([keysP, connectShards(servers, nShards)]);
  for (const n of nodes) shards[n.shard].nodes.push(n);

  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const later = (ms: number, fn: () => void): void => {
    if (stopped) return;
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
  };

  const publish = shardPublisher(shards);
  const home = new HomeLinks({
    seed,
    format,
    retryMs: o.homeRetryMs,
    later,
    arrived(node, url) {
      node.home = url;
      stats.totals.arrived++;
      stats.totals.startupEvents++;
      stats.totals.lifecycleEvents++;
      stats.events.emit("arrived", node.identity);
      stats.changed();
    },
    stranded(node) {
      stats.totals.stranded++;
      stats.events.emit("stranded", node.identity);
      stats.changed();
    },
    request: (url, subject, data, publish) => homeRequest(homeAgent, url, subject, data, publish),
    noResponders: o.noResponders ?? true,
  });

  const rt: SimRuntime = {
    seed,
    token: o.token,
    provisioningJwt: o.provisioningJwt,
    protocol,
    keys,
    stats,
    nodes,
    restartDelayMs: o.restartDelayMs,
    factsOf: (node: SimNode): Facts => resolveFacts(node.identity, node.index),
    lifecycle(node, type, component, extra) {
      const e = newLifecycleEvent(type, node.identity, component, type === "startup" || type === "alive" ? { version: node.version } : extra);
      publish(node, lifecycleSubject(type, component), encodeLifecycle(e, format));
      stats.totals.lifecycleEvents++;
      if (type === "startup") stats.totals.startupEvents++;
      if (type === "alive") stats.totals.aliveEvents++;
    },
    restart(node, delayMs, ro = {}) {
      node.restartCount++;
      stats.totals.restarts++;
      stats.transition(node, Mode.Restarting);
      rt.lifecycle(node, "shutdown", "provision_mode_server");
      later(delayMs, () => {
        if (node.mode !== Mode.Restarting) return;
        // a fresh process: no lock, no ECDH key, nothing queued on the agent mutex
        node.lockBy = undefined;
        node.lockUntil = 0;
        node.ecdhPrivate = undefined;
        node.provisionTail = undefined;
        const faulty = hasFault(node.faults, "come_back_unprovisioned") && node.restartCount === 1 && node.configuredThisBoot;
        if (ro.forceProvisioning || faulty || !leavesProvisioning(node.configuredThisBoot ? node.configuration : undefined)) {
          if (faulty) stats.totals.cameBackUnprovisioned++;
          node.configuredThisBoot = false;
          stats.transition(node, Mode.Provisioning);
          startNode(node);
        } else {
          stats.transition(node, Mode.Server);
          node.home = undefined;
          stats.events.emit("restarted", node.identity);
          // a server's startup event goes to its new brokers, not the provisioning broker
          home.goHome(node, node.configuration);
        }
      });
    },
    shutdown(node, delayMs) {
      stats.transition(node, Mode.ShuttingDown);
      later(delayMs, () => {
        if (node.mode !== Mode.ShuttingDown) return;
        rt.lifecycle(node, "shutdown", "provision_mode_server");
        stats.transition(node, Mode.Shutdown);
        stats.events.emit("shutdown", node.identity);
      });
    },
    kill(node) {
      if (node.mode === Mode.Dead) return;
      stats.transition(node, Mode.Dead);
      stats.events.emit("died", node.identity);
    },
  };

  const homeAgent: HomeAgentDeps = {
    rt,
    byIdentity,
    goBack(node, delayMs) {
      stats.totals.reprovisions++;
      stats.events.emit("reprovisioning", node.identity);
      later(delayMs, () => {
        if (node.mode !== Mode.Server) return;
        // reprovision rewrote its configuration for provisioning and re-executed it
        node.home = undefined;
        node.configuredThisBoot = false;
        node.lockBy = undefined;
        node.lockUntil = 0;
        node.ecdhPrivate = undefined;
        node.provisionTail = undefined;
        node.boot++;
        stats.transition(node, Mode.Provisioning);
        startNode(node);
      });
    },
  };

  function startNode(node: SimNode): void {
    node.startups++;
    periodic.started(node);
    rt.lifecycle(node, "startup", "provision_mode_server");
    stats.events.emit("startup", node.identity);
    stats.changed();
  }

  const dispatcher = new Dispatcher(
    rt,
    { publish: (node, subject, bytes) => publish(node, subject, bytes), connectedServer: (node) => shards[node.shard].server },
    byIdentity,
    { latencyMs: faults.latencyMs, dropProbability: faults.dropProbability },
  );

  await subscribeShards(shards, dispatcher, o.noResponders ?? true);

  // every node is "subscribed" now; startup events follow, spread over the ramp
  stats.totals.inProvisioningMode = nodes.length;
  const ramp = o.startupRampMs ?? (nodes.length <= 1000 ? 0 : Math.round(nodes.length / 10));
  const flush = (): Promise<void> => flushShards(shards);
  const startupPublished = o.announce === false ? Promise.resolve() : publishStartups(nodes, ramp, startNode, later, () => stopped);
  // stop() closing the connections meanwhile is not a failure of the startup
  const startupComplete = startupPublished.then(async () => {
    if (stopped) return;
    try {
      await flush();
    } catch (e) {
      if (!stopped) throw e;
    }
  });
  // it still rejects for whoever waits on it; one that nobody waits on (the sim command) must not
  // end the process as an unhandled rejection when the broker goes away during that flush
  startupComplete.catch(() => undefined);

  periodic.run(nodes, rt, publish, (n) => shards[n.shard].server);

  if (o.recordDir) await writeRecords(rt, o.recordDir, nodes);

  const fleet: Fleet = {
    identities: nodes.map((n) => n.identity),
    faultsOf: (identity) => {
      const n = byIdentity.get(identity);
      if (!n) throw new Error(`no simulated node ${identity}`);
      return faultSet(n.faults);
    },
    neverAnswers: (identity) => {
      const n = byIdentity.get(identity);
      return n !== undefined && hasFault(n.faults, "drop") && (faults.dropProbability ?? 1) >= 1;
    },
    report: () => stats.report(),
    events: stats.events,
    startupComplete,
    flush,
    keyPool: { size: keys.size, generated: keys.generated, generatedMs: keys.generatedMs },
    waitFor: (pred, timeoutMs) => waitForReport(stats, pred, timeoutMs),
    republishStartup(identity) {
      const targets = identity ? [byIdentity.get(identity)] : nodes;
      for (const n of targets) {
        if (!n) throw new Error(`no simulated node ${identity}`);
        if (n.mode === Mode.Provisioning) rt.lifecycle(n, "startup", "provision_mode_server");
      }
      stats.changed();
    },
    crash(identity) {
      const n = byIdentity.get(identity);
      if (!n) throw new Error(`no simulated node ${identity}`);
      n.boot++;
      n.lockBy = undefined;
      n.lockUntil = 0;
      n.ecdhPrivate = undefined;
      n.provisionTail = undefined;
      n.configuredThisBoot = false;
      stats.transition(n, Mode.Provisioning);
      startNode(n);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      periodic.stop();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([closeShards(shards), home.stop()]);
    },
  };
  return fleet;
}
