import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Decision, Inventory, ServerClaims } from "../types/index.js";
import { PolicyLoadError, type PolicyProblem } from "./errors.js";
import type { ConditionTrace, Explanation, RuleTrace } from "./explain.js";
import { inventoryFromFile, InventoryFileError } from "./inventory-file.js";
import { display } from "./load.js";
import type { CompiledCondition } from "./model.js";
import { SourceFile } from "./positions.js";
import { validateSchema } from "./schema.js";
import { loadPolicySet, type PolicySet } from "./index.js";

/** PolicyTest documents as written */
export interface Expectation {
  outcome?: Decision["outcome"];
  reason?: string;
  brokerSet?: string;
  brokers?: string[];
  configuration?: Record<string, string>;
  configurationMatch?: "subset" | "exact";
  absentConfiguration?: string[];
  sans?: string[];
  validityDays?: number;
  upgradeVersion?: string;
  /** these claims; a permission expected false also matches one the decision leaves unset */
  serverClaims?: ServerClaims;
  fired?: string[];
}

interface CaseDoc {
  name: string;
  inventory?: string;
  identity?: string;
  facts?: Record<string, unknown>;
  agents?: string[];
  classes?: string[];
  version?: string;
  upgradable?: boolean;
  csr?: Inventory["csr"];
  jwt?: Record<string, unknown>;
  expect: Expectation;
}

interface TestDoc {
  metadata: { name: string };
  policy?: string;
  policiesDir?: string;
  rulesDir?: string;
  cases: CaseDoc[];
}

export interface CaseResult {
  file: string;
  suite: string;
  name: string;
  /** index of the case in its file */
  index: number;
  /** file:line of the case */
  source: string;
  passed: boolean;
  failures: string[];
  /** condition-level explanation of a failure, rendered */
  explanation?: string;
  decision?: Decision;
  /** true when the inventory came from a recorded file (for fact path coverage) */
  recorded: boolean;
  trace?: Explanation;
}

export interface Coverage {
  rules: { total: number; exercised: number; missing: string[] };
  conditions: { total: number; exercised: number; missing: string[] };
  /** fact paths used in conditions that resolved on no recorded inventory */
  unresolvedPaths: string[];
  percent: number;
}

/** what `--update` did to one case */
export interface CaseUpdate {
  source: string;
  suite: string;
  name: string;
  /** filled: the expectation was empty; rewritten: a failing one now expects the current decision */
  change: "filled" | "rewritten";
  /** the failures before the rewrite (rewritten cases only) */
  failures: string[];
}

/** `--update`: fill only empty expectations (`expect: {}`), or also rewrite failing ones */
export type UpdateMode = "empty" | "all";

export interface TestRun {
  results: CaseResult[];
  /** with `update`: every case changed, in file order */
  updates?: CaseUpdate[];
  /** broken policies or test files: exit 2 */
  problems: PolicyProblem[];
  coverage?: Coverage;
}

export interface TestOptions {
  dir: string;
  policiesDir: string;
  rulesDir?: string;
  /** write current decisions into expectations: empty ones, or also failing ones ("all") */
  update?: UpdateMode;
  coverage?: boolean;
}

const STANDARD_AGENTS = ["choria_provision", "choria_util", "discovery", "rpcutil"];

/** finds PolicyTest files under `dir` (or `dir` itself when it is a file) */
export function findTestFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  if (statSync(dir).isFile()) return [dir];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTestFiles(p));
    else if (/\.ya?ml$/.test(name) && /^\s*kind:\s*PolicyTest\s*$/m.test(readFileSync(p, "utf8"))) out.push(p);
  }
  return out;
}

/**
 * Where PolicyTest files are looked for when no directory is given (`policy test` without DIR,
 * test_on_reload): the named tests directory only; otherwise the policies directory (searched
 * recursively, so policies/tests/ is found), then tests/ beside it.
 */
export function locatePolicyTests(policiesDir: string, testsDir?: string): { dir?: string; searched: string[] } {
  const searched = testsDir ? [resolve(testsDir)] : [resolve(policiesDir), resolve(dirname(resolve(policiesDir)), "tests")];
  return { dir: searched.find((d) => findTestFiles(d).length > 0), searched };
}

/** no PolicyTest files where they were looked for: not a problem of the policies */
export class NoPolicyTestsError extends Error {
  constructor(readonly searched: string[]) {
    super(`no tests found: no PolicyTest files in ${searched.join(" or ")}`);
  }
}

export async function runPolicyTests(opts: TestOptions): Promise<TestRun> {
  const run: TestRun = { results: [], problems: [] };
  const files = findTestFiles(opts.dir);
  if (files.length === 0) run.problems.push({ file: display(opts.dir), line: 1, col: 1, message: "no tests found (no PolicyTest files here)" });
  const sets = new Map<string, PolicySet>();
  const usedSets = new Map<PolicySet, CaseResult[]>();

  for (const file of files) {
    const src = new SourceFile(display(file), readFileSync(file, "utf8"));
    run.problems.push(...src.syntaxProblems);
    if (src.data === undefined) continue;
    const schema = validateSchema("PolicyTest", src);
    if (schema.problems.length) {
      run.problems.push(...schema.problems);
      continue;
    }
    const doc = src.data as TestDoc;
    const base = dirname(file);
    const policiesDir = doc.policiesDir ? resolve(base, doc.policiesDir) : opts.policiesDir;
    const rulesDir = doc.rulesDir ? resolve(base, doc.rulesDir) : opts.rulesDir;
    const key = JSON.stringify([resolve(policiesDir), rulesDir && resolve(rulesDir), doc.policy]);
    let ps = sets.get(key);
    if (!ps) {
      try {
        ps = await loadPolicySet({ policiesDir, ...(rulesDir ? { rulesDir } : {}), ...(doc.policy ? { policy: doc.policy } : {}) });
        sets.set(key, ps);
      } catch (e) {
        if (!(e instanceof PolicyLoadError)) throw e;
        run.problems.push(...e.problems);
        continue;
      }
    }
    const fileResults: CaseResult[] = [];
    for (let i = 0; i < doc.cases.length; i++) {
      const c = doc.cases[i]!;
      let inv: Inventory;
      try {
        inv = buildInventory(c, base);
      } catch (e) {
        if (!(e instanceof InventoryFileError)) throw e;
        run.problems.push(src.problem(["cases", i, "inventory"], e.message));
        continue;
      }
      const trace = await ps.explain(inv);
      const failures = compare(c.expect, trace.decision, trace.origins);
      const result: CaseResult = {
        file: src.file,
        suite: doc.metadata.name,
        name: c.name,
        index: i,
        source: `${src.file}:${src.pos(["cases", i]).line}`,
        passed: failures.length === 0,
        failures,
        decision: trace.decision,
        recorded: c.inventory !== undefined,
        trace,
      };
      if (failures.length) result.explanation = explainFailure(c.expect, trace);
      fileResults.push(result);
    }
    run.results.push(...fileResults);
    usedSets.set(ps, [...(usedSets.get(ps) ?? []), ...fileResults]);
    if (opts.update) (run.updates ??= []).push(...updateFile(file, src, doc, fileResults, opts.update));
  }
  if (opts.coverage) run.coverage = coverage(usedSets);
  return run;
}

function buildInventory(c: CaseDoc, base: string): Inventory {
  let inv: Inventory;
  if (c.inventory) {
    inv = inventoryFromFile(resolve(base, c.inventory), c.identity);
  } else {
    if (!c.identity) throw new InventoryFileError(`case "${c.name}": give an inventory file or an identity`);
    inv = { identity: c.identity, facts: {}, agents: STANDARD_AGENTS, classes: [], collectives: ["provisioning"], mainCollective: "provisioning", dataPlugins: [], machines: [], version: "", upgradable: false };
  }
  if (c.facts) inv.facts = { ...inv.facts, ...c.facts };
  if (c.agents) inv.agents = c.agents;
  if (c.classes) inv.classes = c.classes;
  if (c.version !== undefined) inv.version = c.version;
  if (c.upgradable !== undefined) inv.upgradable = c.upgradable;
  if (c.csr) inv.csr = c.csr;
  if (c.jwt) inv.jwt = c.jwt;
  return inv;
}

/** one message per mismatch, naming the key */
export function compare(e: Expectation, d: Decision, origins: Record<string, string> = {}): string[] {
  const f: string[] = [];
  const q = (v: unknown) => JSON.stringify(v);
  // a wrong value names where it came from: a rule, or the policy defaults at file:line:col
  const from = (k: string) => (origins[k] ? ` (from ${origins[k]})` : "");
  if (e.outcome !== undefined && e.outcome !== d.outcome) f.push(`outcome: expected ${e.outcome}, got ${d.outcome} (${d.reason})`);
  if (e.reason !== undefined && !d.reason.includes(e.reason)) f.push(`reason: expected to contain ${q(e.reason)}, got ${q(d.reason)}`);
  if (e.brokerSet !== undefined && e.brokerSet !== d.brokerSet) f.push(`brokerSet: expected ${e.brokerSet}, got ${d.brokerSet ?? "none"}`);
  if (e.brokers !== undefined && q(e.brokers) !== q(d.brokers)) f.push(`brokers: expected ${q(e.brokers)}, got ${q(d.brokers)}`);
  for (const [k, v] of Object.entries(e.configuration ?? {})) {
    if (!(k in d.configuration)) f.push(`configuration.${k}: expected ${q(v)}, not set`);
    else if (d.configuration[k] !== v) f.push(`configuration.${k}: expected ${q(v)}, got ${q(d.configuration[k])}${from(k)}`);
  }
  if (e.configurationMatch === "exact" && e.configuration) {
    for (const k of Object.keys(d.configuration)) if (!(k in e.configuration)) f.push(`configuration.${k}: not expected, got ${q(d.configuration[k])}${from(k)}`);
  }
  for (const k of e.absentConfiguration ?? []) if (k in d.configuration) f.push(`configuration.${k}: expected absent, got ${q(d.configuration[k])}${from(k)}`);
  if (e.sans !== undefined && q([...e.sans].sort()) !== q([...d.certificate.sans].sort())) f.push(`certificate.sans: expected ${q(e.sans)}, got ${q(d.certificate.sans)}`);
  if (e.validityDays !== undefined && e.validityDays !== d.certificate.validityDays) f.push(`certificate.validityDays: expected ${e.validityDays}, got ${d.certificate.validityDays}`);
  if (e.upgradeVersion !== undefined && e.upgradeVersion !== d.upgradeVersion) f.push(`upgradeVersion: expected ${e.upgradeVersion}, got ${d.upgradeVersion ?? "none"}`);
  if (e.serverClaims !== undefined) compareServerClaims(e.serverClaims, d.serverClaims ?? {}, f);
  if (e.fired !== undefined) {
    const got = d.fired.map((r) => r.name);
    const missing = e.fired.filter((n) => !got.includes(n));
    const extra = got.filter((n) => !e.fired!.includes(n));
    if (missing.length) f.push(`fired: expected ${missing.join(", ")} to fire, did not`);
    if (extra.length) f.push(`fired: ${extra.join(", ")} fired, not expected`);
  }
  return f;
}

function compareServerClaims(e: ServerClaims, d: ServerClaims, f: string[]): void {
  const q = (v: unknown) => JSON.stringify(v);
  for (const k of ["ou", "exp", "collectives", "pub_subjects"] as const) {
    if (e[k] === undefined) continue;
    // lists in the order they go into the JWT
    if (d[k] === undefined) f.push(`serverClaims.${k}: expected ${q(e[k])}, not set`);
    else if (q(e[k]) !== q(d[k])) f.push(`serverClaims.${k}: expected ${q(e[k])}, got ${q(d[k])}`);
  }
  const got: Record<string, boolean | undefined> = d.permissions ?? {};
  // false and unset sign the same token (the signer drops false permissions)
  for (const [k, v] of Object.entries(e.permissions ?? {})) if ((got[k] === true) !== v) f.push(`serverClaims.permissions.${k}: expected ${v}, got ${got[k] ?? "unset"}`);
}

/** the rules that matter for a failure, with every condition and the value seen */
function explainFailure(e: Expectation, x: Explanation): string {
  const wanted = new Set(e.fired ?? []);
  const relevant = x.rules.filter((r) => r.matched || wanted.has(r.name));
  const lines: string[] = [];
  for (const r of relevant) {
    const status = r.applied ? "applied" : r.matched ? `matched, not applied${r.note ? ` (${r.note})` : ""}` : "did not match";
    lines.push(`rule ${r.name} [priority ${r.priority}] ${r.source}: ${status}`);
    renderTrace(r.conditions, "  ", lines);
  }
  if (!relevant.length) lines.push("no rule matched");
  return lines.join("\n");
}

function renderTrace(t: ConditionTrace, indent: string, out: string[]): void {
  const mark = t.result === undefined ? "-" : t.result ? "✓" : "✗";
  if (t.kind === "test") out.push(`${indent}${mark} ${t.fact} ${t.operator} ${JSON.stringify(t.expected)}: saw ${t.actual === undefined ? "<unset>" : JSON.stringify(t.actual)}`);
  else if (t.kind === "not") {
    out.push(`${indent}${mark} not`);
    renderTrace(t.child, indent + "  ", out);
  } else {
    out.push(`${indent}${mark} ${t.kind}`);
    for (const c of t.children) renderTrace(c, indent + "  ", out);
  }
}

function coverage(used: Map<PolicySet, CaseResult[]>): Coverage {
  const cov: Coverage = { rules: { total: 0, exercised: 0, missing: [] }, conditions: { total: 0, exercised: 0, missing: [] }, unresolvedPaths: [], percent: 100 };
  const paths = new Map<string, boolean>();
  for (const [ps, results] of used) {
    const traces = results.map((r) => ({ t: r.trace!, recorded: r.recorded }));
    for (const rule of ps.rules) {
      cov.rules.total++;
      const byCase = traces.map(({ t, recorded }) => ({ trace: t.rules.find((r) => r.name === rule.name), recorded }));
      if (byCase.some((c) => c.trace?.matched)) cov.rules.exercised++;
      else cov.rules.missing.push(`${ps.ref.name}: ${rule.name} (${rule.source})`);
      // leaf conditions: exercised when some case saw them true
      const leaves = leafPaths(rule.condition);
      leaves.forEach((leaf, i) => {
        cov.conditions.total++;
        const seen = byCase.map((c) => (c.trace ? leafTraces(c.trace.conditions)[i] : undefined));
        if (seen.some((s) => s?.result === true)) cov.conditions.exercised++;
        else cov.conditions.missing.push(`${ps.ref.name}: ${rule.name}: ${leaf}`);
        const fact = leaf.split(" ")[0]!;
        const resolved = byCase.some((c, j) => c.recorded && seen[j] !== undefined && seen[j]!.actual !== undefined);
        paths.set(fact, (paths.get(fact) ?? false) || resolved);
      });
    }
  }
  cov.unresolvedPaths = [...paths].filter(([, ok]) => !ok).map(([p]) => p).sort();
  const total = cov.rules.total + cov.conditions.total;
  cov.percent = total ? Math.round(((cov.rules.exercised + cov.conditions.exercised) / total) * 1000) / 10 : 100;
  return cov;
}

function leafPaths(c: CompiledCondition): string[] {
  if (c.kind === "test") return [`${c.fact} ${c.operator} ${JSON.stringify(c.value)}`];
  if (c.kind === "not") return leafPaths(c.child);
  return c.children.flatMap(leafPaths);
}

function leafTraces(t: ConditionTrace): Array<Extract<ConditionTrace, { kind: "test" }>> {
  if (t.kind === "test") return [t];
  if (t.kind === "not") return leafTraces(t.child);
  return t.children.flatMap(leafTraces);
}

/** current decision as an expectation, for --update */
export function expectationOf(d: Decision): Expectation {
  const e: Expectation = { outcome: d.outcome };
  if (d.outcome === "configure") {
    e.brokerSet = d.brokerSet!;
    e.configuration = d.configuration;
    e.sans = d.certificate.sans;
    e.validityDays = d.certificate.validityDays;
    if (d.serverClaims) e.serverClaims = d.serverClaims;
  } else {
    e.reason = d.reason;
  }
  if (d.upgradeVersion) e.upgradeVersion = d.upgradeVersion;
  e.fired = d.fired.map((f) => f.name);
  return e;
}

/**
 * A failing expectation brought in line with the decision, keeping its shape: every key the
 * user wrote stays (configurationMatch included), with the decision's value; a subset
 * configuration key the decision no longer sets moves to absentConfiguration, and an absent key
 * it now sets moves to configuration. Only a key with no value in the decision (brokerSet of a
 * deferred node) goes.
 */
export function rewriteExpectation(e: Expectation, d: Decision): Expectation {
  const out: Expectation = { ...e };
  const set = <K extends keyof Expectation>(k: K, v: Expectation[K] | undefined) => {
    if (v === undefined) delete out[k];
    else out[k] = v;
  };
  if (e.outcome !== undefined) out.outcome = d.outcome;
  if (e.reason !== undefined) out.reason = d.reason;
  if (e.brokerSet !== undefined) set("brokerSet", d.brokerSet);
  if (e.brokers !== undefined) out.brokers = d.brokers;
  if (e.sans !== undefined) out.sans = d.certificate.sans;
  if (e.validityDays !== undefined) out.validityDays = d.certificate.validityDays;
  if (e.upgradeVersion !== undefined) set("upgradeVersion", d.upgradeVersion);
  if (e.serverClaims !== undefined) out.serverClaims = d.serverClaims ?? {};
  if (e.fired !== undefined) out.fired = d.fired.map((f) => f.name);
  if (e.configuration !== undefined || e.absentConfiguration !== undefined) {
    const conf: Record<string, string> = {};
    const absent: string[] = [];
    if (e.configurationMatch === "exact") Object.assign(conf, d.configuration);
    else for (const k of Object.keys(e.configuration ?? {})) if (k in d.configuration) conf[k] = d.configuration[k]!;
    else absent.push(k);
    for (const k of e.absentConfiguration ?? []) if (k in d.configuration) conf[k] = d.configuration[k]!;
    else absent.push(k);
    if (e.configuration !== undefined || Object.keys(conf).length) out.configuration = conf;
    if (e.absentConfiguration !== undefined || absent.length) out.absentConfiguration = absent;
  }
  return out;
}

const isEmpty = (e: Expectation | null | undefined): boolean => !e || Object.keys(e).length === 0;

/** writes the changed `expect` maps only, keeping comments and the rest of the file; returns what changed */
function updateFile(file: string, src: SourceFile, doc: TestDoc, results: CaseResult[], mode: UpdateMode): CaseUpdate[] {
  const updates: CaseUpdate[] = [];
  for (const r of results) {
    if (!r.decision) continue;
    const written = doc.cases[r.index]!.expect;
    const at = { source: r.source, suite: r.suite, name: r.name };
    if (isEmpty(written)) updates.push({ ...at, change: "filled", failures: [] });
    else if (!r.passed && mode === "all") updates.push({ ...at, change: "rewritten", failures: r.failures });
    else continue;
    const next = isEmpty(written) ? expectationOf(r.decision) : rewriteExpectation(written, r.decision);
    src.doc.setIn(["cases", r.index, "expect"], src.doc.createNode(next));
  }
  if (updates.length) writeFileSync(file, src.doc.toString({ lineWidth: 0 }));
  return updates;
}

export type { RuleTrace };

/** test_on_reload: a policy version whose own tests fail is not put in force */
export async function requirePassingTests(policiesDir: string, testsDir: string | undefined, rulesDir: string | undefined): Promise<void> {
  const found = locatePolicyTests(policiesDir, testsDir);
  if (!found.dir) throw new NoPolicyTestsError(found.searched);
  const run = await runPolicyTests({ dir: found.dir, policiesDir, rulesDir });
  const failed = run.results.filter((r) => !r.passed);
  if (run.problems.length === 0 && failed.length === 0) return;
  const problems = [
    ...run.problems,
    ...failed.map((f) => {
      const m = /^(.*):(\d+)$/.exec(f.source);
      return { file: m ? m[1] : f.file, line: m ? Number(m[2]) : 1, col: 1, rule: f.name, message: `policy test failed: ${f.failures.join("; ")}` };
    }),
  ];
  throw Object.assign(new Error(`policy tests failed (${failed.length} failing cases, ${run.problems.length} problems): ${problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join("\n")}`), { problems });
}
