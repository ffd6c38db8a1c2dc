/**
 * Realistic, deterministic facts for simulated nodes. Facts are never stored per node:
 * they are a pure function of (seed, identity), recomputed when inventory or a fact filter
 * needs them, which keeps a 100k-node fleet small.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { draw, hash32, intBetween, mulberry32, pick } from "./prng.js";

export type Facts = Record<string, unknown>;

interface Dc {
  dc: string;
  country: string;
  /** second octet of the dc's 10.x.0.0/16 range */
  net: number;
}

/** The data centres policies know about; a node outside this list is the "unknown dc" defer case. */
export const KNOWN_DCS: readonly Dc[] = [
  { dc: "ams1", country: "nl", net: 1 },
  { dc: "ams2", country: "nl", net: 2 },
  { dc: "nyc1", country: "us", net: 3 },
  { dc: "sfo2", country: "us", net: 4 },
  { dc: "fra1", country: "de", net: 5 },
  { dc: "lon1", country: "gb", net: 6 },
  { dc: "par1", country: "fr", net: 7 },
  { dc: "tyo1", country: "jp", net: 8 },
];

/** dcs that no policy knows: a handful of nodes report them so defer paths get exercised */
export const UNKNOWN_DCS: readonly Dc[] = [
  { dc: "zrh9", country: "de", net: 250 },
  { dc: "lab7", country: "nl", net: 251 },
];

const COUNTRY_WEIGHTS: ReadonlyArray<[string, number]> = [
  ["nl", 25],
  ["us", 30],
  ["de", 15],
  ["gb", 12],
  ["fr", 10],
  ["jp", 8],
];
const ROLE_WEIGHTS: ReadonlyArray<[string, number]> = [
  ["web", 35],
  ["worker", 25],
  ["cache", 12],
  ["db", 10],
  ["lb", 8],
  ["decommissioned", 2],
];
const ENV_WEIGHTS: ReadonlyArray<[string, number]> = [
  ["production", 60],
  ["staging", 25],
  ["dev", 15],
];
const OSES: ReadonlyArray<{ family: string; name: string; release: string }> = [
  { family: "Debian", name: "Debian", release: "12" },
  { family: "Debian", name: "Debian", release: "11" },
  { family: "Debian", name: "Ubuntu", release: "22.04" },
  { family: "Debian", name: "Ubuntu", release: "24.04" },
  { family: "RedHat", name: "AlmaLinux", release: "9.4" },
  { family: "RedHat", name: "RedHat", release: "8.10" },
];

/** fraction of nodes reporting a dc outside KNOWN_DCS */
export const UNKNOWN_DC_FRACTION = 0.005;
export const CURRENT_VERSION = "0.29.4";
export const OLD_VERSION = "0.28.0";

function weighted(rnd: () => number, table: ReadonlyArray<[string, number]>): string {
  const total = table.reduce((s, [, w]) => s + w, 0);
  let x = rnd() * total;
  for (const [v, w] of table) {
    x -= w;
    if (x < 0) return v;
  }
  return table[table.length - 1][0];
}

export function identityOf(index: number, domain = "example.net"): string {
  return `sim-${String(index + 1).padStart(5, "0")}.${domain}`;
}

export function hasUnknownDc(seed: number, identity: string): boolean {
  return draw(seed, "unknown-dc", identity) < UNKNOWN_DC_FRACTION;
}

export function generateFacts(seed: number, identity: string): Facts {
  const rnd = mulberry32(hash32(`${seed}/facts/${identity}`));
  let site: Dc;
  if (hasUnknownDc(seed, identity)) {
    site = pick(rnd, UNKNOWN_DCS);
  } else {
    const country = weighted(rnd, COUNTRY_WEIGHTS);
    site = pick(rnd, KNOWN_DCS.filter((d) => d.country === country));
  }
  const role = weighted(rnd, ROLE_WEIGHTS);
  const os = pick(rnd, OSES);
  const cpus = role === "db" ? pick(rnd, [16, 32, 64]) : role === "lb" ? pick(rnd, [2, 4]) : pick(rnd, [2, 4, 8, 16]);
  const memPerCpu = role === "db" || role === "cache" ? 8192 : pick(rnd, [2048, 4096]);
  const host = identity.split(".")[0];
  return {
    country: site.country,
    dc: site.dc,
    role,
    environment: weighted(rnd, ENV_WEIGHTS),
    os: { family: os.family, name: os.name, release: os.release },
    hardware: { cpus, memory_mb: cpus * memPerCpu },
    network: {
      hostname: host,
      interface: "eth0",
      // a private range per dc: data for policies only, nothing ever connects to it
      ip: `10.${site.net}.${intBetween(rnd, 0, 255)}.${intBetween(rnd, 1, 254)}`,
      netmask: "255.255.0.0",
    },
  };
}

export function versionOf(seed: number, identity: string): string {
  return draw(seed, "version", identity) < 0.1 ? OLD_VERSION : CURRENT_VERSION;
}

export function upgradableOf(seed: number, identity: string): boolean {
  return draw(seed, "upgradable", identity) < 0.3;
}

/** What --facts / FleetOptions.facts can hold: one object for every node, a map identity -> facts, or a function. */
export type FactsInput = Facts | ((identity: string, index: number) => Facts);

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * An object is taken as a per-identity map when every key looks like an FQDN and every
 * value is an object; fact names never contain dots at the top level, identities always do.
 */
export function isIdentityMap(o: Record<string, unknown>): boolean {
  const keys = Object.keys(o);
  return keys.length > 0 && keys.every((k) => k.includes(".") && isPlain(o[k]));
}

export function factsResolver(seed: number, input?: FactsInput): (identity: string, index: number) => Facts {
  if (input === undefined) return (id) => generateFacts(seed, id);
  if (typeof input === "function") return input;
  if (isIdentityMap(input)) {
    const map = input as Record<string, Facts>;
    return (id) => map[id] ?? generateFacts(seed, id);
  }
  const all = input;
  return () => all;
}

export function loadFactsFile(path: string): Facts {
  const text = readFileSync(path, "utf8");
  const parsed: unknown = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  if (!isPlain(parsed)) throw new Error(`${path}: facts must be an object (one set for all nodes) or a map of identity -> facts`);
  return parsed;
}
