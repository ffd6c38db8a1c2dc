import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import type { Decision, PolicyRef } from "../types/index.js";
import { inventoryFromFile } from "./inventory-file.js";
import { loadPolicySet } from "./index.js";

export interface KeyChange {
  key: string;
  from: unknown;
  to: unknown;
}

export interface NodeChange {
  identity: string;
  file: string;
  from: Decision["outcome"];
  to: Decision["outcome"];
  changes: KeyChange[];
}

/** a broker set (a name with its brokers) the new version sends nodes to and the old one sent none to */
export interface IntroducedBrokerSet {
  name?: string;
  brokers: string[];
  /** recorded nodes the new version sends there */
  nodes: number;
}

export interface DiffResult {
  from: PolicyRef;
  to: PolicyRef;
  nodes: number;
  changed: NodeChange[];
  /** what a canary guards when this change is loaded (docs/operations.md, guarded rollout) */
  introducedBrokerSets: IntroducedBrokerSet[];
}

export interface DiffOptions {
  /** git ref of the old policies */
  from: string;
  /** git ref, or "worktree" (default) for the files on disk */
  to?: string;
  inventoriesDir: string;
  policiesDir: string;
  rulesDir?: string;
  policy?: string;
}

/** every key whose value differs, in a stable order; the policy hash is left out, it always differs */
export function diffDecisions(a: Decision, b: Decision): KeyChange[] {
  const out: KeyChange[] = [];
  const cmp = (key: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ key, from: x, to: y });
  };
  cmp("outcome", a.outcome, b.outcome);
  cmp("reason", a.reason, b.reason);
  cmp("brokerSet", a.brokerSet, b.brokerSet);
  cmp("brokers", a.brokers, b.brokers);
  for (const k of unionKeys(a.configuration, b.configuration)) cmp(`configuration.${k}`, a.configuration[k], b.configuration[k]);
  cmp("certificate.validityDays", a.certificate.validityDays, b.certificate.validityDays);
  cmp("certificate.sans", [...a.certificate.sans].sort(), [...b.certificate.sans].sort());
  cmp("upgradeVersion", a.upgradeVersion, b.upgradeVersion);
  cmp("upgradeRepository", a.upgradeRepository, b.upgradeRepository);
  for (const k of unionKeys(a.actionPolicies, b.actionPolicies)) cmp(`actionPolicies.${k}`, a.actionPolicies[k], b.actionPolicies[k]);
  for (const k of unionKeys(a.opaPolicies, b.opaPolicies)) cmp(`opaPolicies.${k}`, a.opaPolicies[k], b.opaPolicies[k]);
  const sa = a.serverClaims ?? {};
  const sb = b.serverClaims ?? {};
  for (const k of ["ou", "exp", "collectives", "pub_subjects"] as const) cmp(`serverClaims.${k}`, sa[k], sb[k]);
  const pa: Record<string, unknown> = sa.permissions ?? {};
  const pb: Record<string, unknown> = sb.permissions ?? {};
  for (const k of unionKeys(pa, pb)) cmp(`serverClaims.permissions.${k}`, pa[k], pb[k]);
  cmp("fired", a.fired.map((f) => f.name), b.fired.map((f) => f.name));
  return out;
}

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

/**
 * Evaluates every inventory in a directory with the policies of two versions and lists each
 * node whose decision changes. Old versions come from `git archive`, so uncommitted files of
 * the working tree never leak into them.
 */
export async function diffPolicies(opts: DiffOptions): Promise<DiffResult> {
  if (!existsSync(opts.inventoriesDir) || !statSync(opts.inventoriesDir).isDirectory()) throw new Error(`inventories directory not found: ${resolve(opts.inventoriesDir)}`);
  const temps: string[] = [];
  try {
    const side = async (ref: string) => {
      let policiesDir = opts.policiesDir;
      let rulesDir = opts.rulesDir;
      if (ref !== "worktree") {
        const dir = checkout(ref, [policiesDir, rulesDir ?? join(resolve(opts.policiesDir), "..", "rules")]);
        temps.push(dir.tmp);
        policiesDir = dir.map(policiesDir);
        if (rulesDir) rulesDir = dir.map(rulesDir);
      }
      return loadPolicySet({ policiesDir, ...(rulesDir ? { rulesDir } : {}), ...(opts.policy ? { policy: opts.policy } : {}) });
    };
    const before = await side(opts.from);
    const after = await side(opts.to ?? "worktree");
    const files = readdirSync(opts.inventoriesDir).filter((f) => f.endsWith(".json")).sort();
    const changed: NodeChange[] = [];
    const setKey = (d: Decision) => `${d.brokerSet ?? ""}|${[...d.brokers].sort().join(",")}`;
    const oldSets = new Set<string>();
    const newSets = new Map<string, IntroducedBrokerSet>();
    for (const f of files) {
      const file = join(opts.inventoriesDir, f);
      const inv = inventoryFromFile(file);
      const [a, b] = await Promise.all([before.evaluate(inv), after.evaluate(inv)]);
      if (a.outcome === "configure") oldSets.add(setKey(a));
      if (b.outcome === "configure") {
        const k = setKey(b);
        const e = newSets.get(k) ?? { name: b.brokerSet, brokers: [...b.brokers].sort(), nodes: 0 };
        e.nodes++;
        newSets.set(k, e);
      }
      const changes = diffDecisions(a, b);
      if (changes.length) changed.push({ identity: inv.identity, file, from: a.outcome, to: b.outcome, changes });
    }
    const introducedBrokerSets = [...newSets.entries()].filter(([k]) => !oldSets.has(k)).map(([, v]) => v);
    return { from: before.ref, to: after.ref, nodes: files.length, changed, introducedBrokerSets };
  } finally {
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  }
}

function git(args: string[], cwd: string, input?: Buffer): Buffer {
  const r = spawnSync("git", args, { cwd, input, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString().trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** extracts `paths` as of `ref` into a temp dir; `map` turns a worktree path into its copy */
function checkout(ref: string, paths: string[]): { tmp: string; map: (p: string) => string } {
  const top = git(["rev-parse", "--show-toplevel"], resolve(paths[0]!)).toString().trim();
  if (spawnSync("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd: top }).status !== 0) throw new Error(`git ref ${JSON.stringify(ref)} is not a commit in ${top}`);
  const tmp = mkdtempSync(join(tmpdir(), "policy-diff-"));
  for (const p of paths) {
    const rel = relative(top, resolve(p));
    // a directory that did not exist at `ref` (e.g. no rules yet, or empty so git has none) is empty there
    mkdirSync(join(tmp, rel), { recursive: true });
    const ls = git(["ls-tree", "--name-only", ref, "--", rel], top).toString().trim();
    if (!ls) continue;
    const tar = git(["archive", "--format=tar", ref, "--", rel], top);
    const r = spawnSync("tar", ["-x", "-C", tmp], { input: tar });
    if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  }
  return { tmp, map: (p) => join(tmp, relative(top, resolve(p))) };
}
