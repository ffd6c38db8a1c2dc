/**
 * Fleet bookkeeping: totals are counted as things happen (so waitFor can evaluate a predicate
 * on every event of a 100k-node fleet cheaply); the per-node list is built only when read.
 */
import { EventEmitter } from "node:events";
import { faultSet } from "./faults.js";
import { Mode, type CertificateRecord, type SimNode, type Violation } from "./node.js";

export interface NodeReport {
  identity: string;
  mode: Mode;
  faults: string[];
  version: string;
  configureCount: number;
  restartCount: number;
  /** configured and restarted into a normal server */
  provisioned: boolean;
  /** the home broker it published its startup event on, once it did */
  home?: string;
  configuration?: Record<string, string>;
  certificate?: CertificateRecord;
  /** the server JWT configure delivered (features.ed25519) and the gen25519 key it must name */
  serverJwt?: string;
  ed25519Public?: string;
  violations: Violation[];
}

export interface FleetTotals {
  nodes: number;
  /** nodes subscribed to provisioning subjects right now */
  inProvisioningMode: number;
  provisioned: number;
  /** nodes that received at least one configure */
  configured: number;
  configuredMoreThanOnce: number;
  configures: number;
  restarts: number;
  shutdown: number;
  dead: number;
  cameBackUnprovisioned: number;
  /** restarted nodes that reached a home broker and published their startup event there */
  arrived: number;
  /** restarted nodes that could not reach any home broker at their first try (some arrive later) */
  stranded: number;
  upgraded: number;
  /** provisioned nodes that accepted reprovision at home (certificate renewal) */
  reprovisions: number;
  violations: number;
  violationsByKind: Record<string, number>;
  /** RPC requests that reached an agent, by "agent#action" (discovery counts as "discovery#ping") */
  requests: Record<string, number>;
  replies: number;
  /** replies suppressed by the drop fault (not violations: the provisioner did nothing wrong) */
  droppedByFault: number;
  /** requests to a node that was restarting or shutting down and held the agent mutex */
  unansweredWhileRestarting: number;
  /** directed requests for identities that are not (or no longer) listening */
  toAbsentNodes: number;
  startupEvents: number;
  lifecycleEvents: number;
  aliveEvents: number;
  registrations: number;
  /** CSRs built, and the time spent building and signing them */
  csrs: number;
  csrMs: number;
  /** replies not sent because the fault latency passed the agent's timeout */
  agentTimeouts: number;
}

export interface FleetReport {
  generatedAt: string;
  seed: number;
  totals: FleetTotals;
  /** built lazily: reading it walks every node */
  nodes: NodeReport[];
  /** violations that no single node owns (bad broadcasts); the first 100 */
  unattributedViolations: Violation[];
}

/** per-node cap so a misbehaving provisioner cannot grow memory without bound */
export const MAX_VIOLATIONS_PER_NODE = 50;
const MAX_UNATTRIBUTED = 100;

export class FleetStats {
  readonly events = new EventEmitter();
  readonly totals: FleetTotals;
  readonly unattributed: Violation[] = [];
  private readonly seed: number;
  private readonly nodes: SimNode[];

  constructor(seed: number, nodes: SimNode[]) {
    this.seed = seed;
    this.nodes = nodes;
    // waitFor and the CLI add listeners per caller; a busy test suite can exceed Node's default 10
    this.events.setMaxListeners(0);
    this.totals = {
      nodes: nodes.length,
      inProvisioningMode: 0,
      provisioned: 0,
      configured: 0,
      configuredMoreThanOnce: 0,
      configures: 0,
      restarts: 0,
      shutdown: 0,
      dead: 0,
      cameBackUnprovisioned: 0,
      arrived: 0,
      stranded: 0,
      upgraded: 0,
      reprovisions: 0,
      violations: 0,
      violationsByKind: {},
      requests: {},
      replies: 0,
      droppedByFault: 0,
      unansweredWhileRestarting: 0,
      toAbsentNodes: 0,
      startupEvents: 0,
      lifecycleEvents: 0,
      aliveEvents: 0,
      registrations: 0,
      csrs: 0,
      csrMs: 0,
      agentTimeouts: 0,
    };
  }

  /** any counter changed: waitFor re-evaluates on this */
  changed(): void {
    this.events.emit("update");
  }

  violation(node: SimNode | undefined, kind: string, detail: string): void {
    const v: Violation = { kind, detail, at: new Date().toISOString() };
    this.totals.violations++;
    this.totals.violationsByKind[kind] = (this.totals.violationsByKind[kind] ?? 0) + 1;
    if (node) {
      node.violations ??= [];
      if (node.violations.length < MAX_VIOLATIONS_PER_NODE) node.violations.push(v);
    } else if (this.unattributed.length < MAX_UNATTRIBUTED) {
      this.unattributed.push(v);
    }
    this.events.emit("violation", { identity: node?.identity, kind, detail });
    this.changed();
  }

  request(agent: string, action: string, node?: SimNode): void {
    const k = `${agent}#${action}`;
    this.totals.requests[k] = (this.totals.requests[k] ?? 0) + 1;
    // per-node timing for provisioners measured from the fleet's side (bench/reference.ts)
    if (node) this.events.emit("request", node.identity, k);
  }

  /** a reply left the node (not dropped, not suppressed) */
  replied(node: SimNode, agent: string, action: string): void {
    this.events.emit("reply", node.identity, `${agent}#${action}`);
  }

  csrTimed(ms: number): void {
    this.totals.csrs++;
    this.totals.csrMs += ms;
  }

  upgraded(): void {
    this.totals.upgraded++;
    this.changed();
  }

  configured(node: SimNode): void {
    this.totals.configures++;
    if (node.configureCount === 1) this.totals.configured++;
    if (node.configureCount === 2) this.totals.configuredMoreThanOnce++;
    // the serial too: a node configured twice held two certificates, and the report keeps only the last
    this.events.emit("configured", node.identity, node.certificate?.serial);
    this.changed();
  }

  /** mode transitions keep inProvisioningMode/provisioned/shutdown/dead exact */
  transition(node: SimNode, to: Mode): void {
    const from = node.mode;
    if (from === to) return;
    const wasIn = node.listening;
    node.mode = to;
    const isIn = node.listening;
    if (wasIn && !isIn) this.totals.inProvisioningMode--;
    if (!wasIn && isIn) this.totals.inProvisioningMode++;
    if (from === Mode.Server) this.totals.provisioned--;
    if (to === Mode.Server) this.totals.provisioned++;
    if (to === Mode.Shutdown) this.totals.shutdown++;
    if (to === Mode.Dead) this.totals.dead++;
    this.changed();
  }

  report(): FleetReport {
    const nodes = this.nodes;
    const totals = structuredClone(this.totals);
    const r = {
      generatedAt: new Date().toISOString(),
      seed: this.seed,
      totals,
      unattributedViolations: [...this.unattributed],
    } as FleetReport;
    let built: NodeReport[] | undefined;
    // enumerable accessor: JSON.stringify includes it, callers that only read totals never pay for it
    Object.defineProperty(r, "nodes", {
      enumerable: true,
      get: () => (built ??= nodes.map(nodeReport)),
    });
    return r;
  }
}

export function nodeReport(n: SimNode): NodeReport {
  const r: NodeReport = {
    identity: n.identity,
    mode: n.mode,
    faults: [...faultSet(n.faults)],
    version: n.version,
    configureCount: n.configureCount,
    restartCount: n.restartCount,
    provisioned: n.mode === Mode.Server,
    violations: n.violations ? [...n.violations] : [],
  };
  if (n.home) r.home = n.home;
  if (n.configuration) r.configuration = { ...n.configuration };
  if (n.certificate) r.certificate = { ...n.certificate };
  if (n.serverJwt) r.serverJwt = n.serverJwt;
  if (n.ed25519Public) r.ed25519Public = n.ed25519Public;
  return r;
}

/** resolves once pred(report) holds, checked now and on every fleet change; rejects after timeoutMs */
export function waitForReport(stats: FleetStats, pred: (r: FleetReport) => boolean, timeoutMs: number): Promise<FleetReport> {
  return new Promise<FleetReport>((resolve, reject) => {
    const check = (): boolean => {
      const r = stats.report();
      let hit: boolean;
      try {
        hit = pred(r);
      } catch (e) {
        // a throwing predicate must not escape into the emitter of whatever changed the fleet
        cleanup();
        reject(e as Error);
        return true;
      }
      if (!hit) return false;
      cleanup();
      resolve(r);
      return true;
    };
    const onUpdate = (): void => void check();
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`waitFor timed out after ${timeoutMs}ms; totals: ${JSON.stringify(stats.totals)}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      stats.events.off("update", onUpdate);
    };
    stats.events.on("update", onUpdate);
    check();
  });
}
