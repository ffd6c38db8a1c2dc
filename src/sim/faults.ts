/**
 * Fault injection. Which node has which fault is a pure function of (seed, identity), so a
 * test can ask faultsOf() up front and know exactly who will misbehave.
 */
import { draw } from "./prng.js";

export const FAULT_NAMES = [
  "latency",
  "drop",
  "die_after_inventory",
  "die_after_gencsr",
  "bad_csr",
  "wrong_cn_csr",
  "come_back_unprovisioned",
  "rejected_at_home",
  "lose_first_restart",
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export interface FaultOptions {
  /** reply latency range in ms, applied to nodes with the latency fault */
  latencyMs?: [number, number];
  /** fraction of nodes with latency; default 1 when latencyMs is given */
  latency?: number;
  /** fraction of nodes that drop replies */
  drop?: number;
  /** probability that such a node drops a given reply; default 1 */
  dropProbability?: number;
  /** fraction of nodes that stop answering anything right after their inventory reply */
  dieAfterInventory?: number;
  /** fraction of nodes that stop answering anything right after their gencsr reply */
  dieAfterGencsr?: number;
  /** fraction of nodes whose gencsr returns something that is not a PEM CSR */
  badCsr?: number;
  /** fraction of nodes whose CSR carries another identity's CN */
  wrongCnCsr?: number;
  /** fraction of nodes that come back in provisioning mode after restart */
  comeBackUnprovisioned?: number;
  /** fraction of nodes whose home brokers refuse them (as a broker refusing their certificate): they never arrive */
  rejectedAtHome?: number;
  /** fraction of nodes whose first restart request is lost on the way, as in a broker outage: no reply, no restart */
  loseFirstRestart?: number;
}

const FRACTION_OF: Record<FaultName, (f: FaultOptions) => number> = {
  latency: (f) => (f.latencyMs ? (f.latency ?? 1) : 0),
  drop: (f) => f.drop ?? 0,
  die_after_inventory: (f) => f.dieAfterInventory ?? 0,
  die_after_gencsr: (f) => f.dieAfterGencsr ?? 0,
  bad_csr: (f) => f.badCsr ?? 0,
  wrong_cn_csr: (f) => f.wrongCnCsr ?? 0,
  come_back_unprovisioned: (f) => f.comeBackUnprovisioned ?? 0,
  rejected_at_home: (f) => f.rejectedAtHome ?? 0,
  lose_first_restart: (f) => f.loseFirstRestart ?? 0,
};

export const FAULT_BIT: Record<FaultName, number> = Object.fromEntries(FAULT_NAMES.map((n, i) => [n, 1 << i])) as Record<FaultName, number>;

/** The node's faults as a bit mask (one small int per node instead of a Set). */
export function assignFaults(seed: number, identity: string, f: FaultOptions): number {
  let mask = 0;
  for (const name of FAULT_NAMES) {
    const fraction = FRACTION_OF[name](f);
    if (fraction > 0 && draw(seed, `fault:${name}`, identity) < fraction) mask |= FAULT_BIT[name];
  }
  return mask;
}

export function faultSet(mask: number): Set<string> {
  const s = new Set<string>();
  for (const name of FAULT_NAMES) if (mask & FAULT_BIT[name]) s.add(name);
  return s;
}

export function hasFault(mask: number, name: FaultName): boolean {
  return (mask & FAULT_BIT[name]) !== 0;
}

function fraction(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`fault ${name}: expected a fraction between 0 and 1, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Parses the CLI form, e.g. "latency=20-200,drop=0.05,drop_probability=0.5,die_after_gencsr=0.01,
 * bad_csr=0.01,wrong_cn_csr=0.01,come_back_unprovisioned=0.02,rejected_at_home=0.01,
 * lose_first_restart=0.01". latency takes a ms range and,
 * optionally, latency_fraction.
 */
export function parseFaultSpec(spec: string): FaultOptions {
  const f: FaultOptions = {};
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new Error(`fault ${JSON.stringify(part)}: expected name=value`);
    const name = part.slice(0, eq).trim().replace(/-/g, "_");
    const v = part.slice(eq + 1).trim();
    switch (name) {
      case "latency": {
        const m = /^(\d+)(?:-(\d+))?$/.exec(v);
        if (!m) throw new Error(`fault latency: expected MS or MIN-MAX, got ${JSON.stringify(v)}`);
        const lo = Number(m[1]);
        const hi = m[2] !== undefined ? Number(m[2]) : lo;
        if (hi < lo) throw new Error(`fault latency: ${hi} < ${lo}`);
        f.latencyMs = [lo, hi];
        break;
      }
      case "latency_fraction":
        f.latency = fraction(name, v);
        break;
      case "drop":
        f.drop = fraction(name, v);
        break;
      case "drop_probability":
        f.dropProbability = fraction(name, v);
        break;
      case "die_after_inventory":
        f.dieAfterInventory = fraction(name, v);
        break;
      case "die_after_gencsr":
        f.dieAfterGencsr = fraction(name, v);
        break;
      case "bad_csr":
        f.badCsr = fraction(name, v);
        break;
      case "wrong_cn_csr":
        f.wrongCnCsr = fraction(name, v);
        break;
      case "come_back_unprovisioned":
        f.comeBackUnprovisioned = fraction(name, v);
        break;
      case "rejected_at_home":
        f.rejectedAtHome = fraction(name, v);
        break;
      case "lose_first_restart":
        f.loseFirstRestart = fraction(name, v);
        break;
      default:
        throw new Error(`unknown fault ${JSON.stringify(name)}; known: ${FAULT_NAMES.join(", ")}, latency_fraction, drop_probability`);
    }
  }
  return f;
}
