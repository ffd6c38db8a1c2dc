import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, isAbsolute } from "node:path";
import { compileRule, compileThen, type CompileContext } from "./compile.js";
import { sortProblems, type PolicyProblem } from "./errors.js";
import { policySetHash } from "./hash.js";
import type { CompiledPolicy, CompiledRule, PolicyDoc, RuleSetDoc } from "./model.js";
import { SourceFile } from "./positions.js";
import { validateSchema, type SchemaKind } from "./schema.js";

export interface LoadOptions {
  policiesDir: string;
  /** defaults to the `rules` directory next to policiesDir */
  rulesDir?: string;
  /** policy name, needed when the directory holds several */
  policy?: string;
}

export interface LoadedPolicies {
  policies: Map<string, CompiledPolicy>;
  problems: PolicyProblem[];
}

interface Parsed<T> {
  src: SourceFile;
  doc: T;
  /** rule indexes with schema errors; they are not compiled further */
  badRules: Set<number>;
  schemaOk: boolean;
}

const YAML_FILE = /\.ya?ml$/;

/**
 * Reads every YAML file of both directories, validates all of them and compiles every policy
 * with its included rule sets. Problems are collected, never thrown one at a time.
 */
export function loadPolicies(opts: LoadOptions): LoadedPolicies {
  const problems: PolicyProblem[] = [];
  const policiesDir = opts.policiesDir;
  const rulesDir = opts.rulesDir ?? join(dirname(resolve(policiesDir)), "rules");

  if (!isDir(policiesDir)) {
    problems.push({ file: display(policiesDir), line: 1, col: 1, message: "policies directory not found" });
    if (opts.rulesDir !== undefined && !isDir(opts.rulesDir)) problems.push({ file: display(opts.rulesDir), line: 1, col: 1, message: "rules directory not found" });
    return { policies: new Map(), problems };
  }
  if (opts.rulesDir !== undefined && !isDir(opts.rulesDir)) {
    problems.push({ file: display(opts.rulesDir), line: 1, col: 1, message: "rules directory not found" });
  }

  const policyDocs: Array<Parsed<PolicyDoc>> = [];
  const ruleSetDocs: Array<Parsed<RuleSetDoc>> = [];
  const files = [...listYaml(policiesDir, false).map((f) => ({ f, dir: "policies" as const })), ...(isDir(rulesDir) ? listYaml(rulesDir, true) : []).map((f) => ({ f, dir: "rules" as const }))];
  for (const { f, dir } of files) {
    const src = new SourceFile(display(f), readFileSync(f, "utf8"));
    problems.push(...src.syntaxProblems);
    if (src.data === undefined) continue;
    const kind = (src.data as { kind?: unknown } | null)?.kind;
    const wanted = dir === "policies" ? ["Policy", "PolicyTest"] : ["RuleSet"];
    if (typeof kind !== "string" || !wanted.includes(kind)) {
      problems.push(src.problem(["kind"], `expected kind ${wanted.join(" or ")} in the ${dir} directory, got ${JSON.stringify(kind ?? null)}`));
      continue;
    }
    // tests live next to policies but are checked by `policy test`
    if (kind === "PolicyTest") continue;
    const ruleName = (path: string[]) => {
      if (path[0] !== "rules" || path.length < 2) return undefined;
      const r = (src.data as { rules?: Array<{ name?: unknown }> }).rules?.[Number(path[1])];
      return typeof r?.name === "string" ? r.name : undefined;
    };
    const schema = validateSchema(kind as SchemaKind, src, ruleName);
    problems.push(...schema.problems);
    // a schema error inside one rule only takes that rule out of the semantic checks
    const badRules = new Set<number>();
    let topLevelBad = false;
    for (const e of schema.paths) {
      if (e[0] === "rules" && e.length >= 2) badRules.add(Number(e[1]));
      else topLevelBad = true;
    }
    const parsed = { src, doc: src.data as never, badRules, schemaOk: !topLevelBad };
    if (kind === "Policy") policyDocs.push(parsed);
    else ruleSetDocs.push(parsed);
  }

  // rule sets by name; the first definition wins, later ones are reported
  const ruleSets = new Map<string, Parsed<RuleSetDoc>>();
  for (const rs of ruleSetDocs) {
    const name = rs.doc.metadata?.name;
    if (typeof name !== "string") continue;
    const prev = ruleSets.get(name);
    if (prev) problems.push(rs.src.problem(["metadata", "name"], `rule set "${name}" is already defined in ${prev.src.file}:${prev.src.pos(["metadata", "name"]).line}`));
    else ruleSets.set(name, rs);
  }

  const policies = new Map<string, CompiledPolicy>();
  const included = new Set<string>();
  for (const p of policyDocs) {
    const name = p.doc.metadata?.name;
    if (typeof name === "string" && policies.has(name)) {
      problems.push(p.src.problem(["metadata", "name"], `policy "${name}" is defined twice`));
      continue;
    }
    const compiled = compilePolicy(p, ruleSets, problems, included);
    if (compiled) policies.set(compiled.name, compiled);
  }

  // rule sets no policy includes are still checked, so a typo cannot wait for the day they are used
  for (const [name, rs] of ruleSets) {
    if (included.has(name) || !rs.schemaOk) continue;
    const ctx: CompileContext = { src: rs.src, ruleSet: name, problems, roots: new Set() };
    checkRuleList(ctx, rs, 0, new Map(), problems);
  }
  return { policies, problems: sortProblems(problems) };
}

function compilePolicy(p: Parsed<PolicyDoc>, ruleSets: Map<string, Parsed<RuleSetDoc>>, problems: PolicyProblem[], included: Set<string>): CompiledPolicy | undefined {
  if (!p.schemaOk) return undefined;
  const before = problems.length;
  const doc = p.doc;
  const vars = doc.vars ?? {};
  const brokerSets = doc.brokerSets ?? {};
  const roots = new Set<string>();
  const rules: CompiledRule[] = [];
  const names = new Map<string, string>();
  const includedDocs: unknown[] = [];
  const files = [p.src.file];

  const seen = new Set<string>();
  (doc.include ?? []).forEach((inc, i) => {
    if (seen.has(inc)) {
      problems.push(p.src.problem(["include", i], `rule set "${inc}" is included twice`));
      return;
    }
    seen.add(inc);
    const rs = ruleSets.get(inc);
    if (!rs) {
      problems.push(p.src.problem(["include", i], `undefined rule set "${inc}"${ruleSets.size ? ` (known: ${[...ruleSets.keys()].sort().join(", ")})` : " (no rule sets found in the rules directory)"}`));
      return;
    }
    included.add(inc);
    includedDocs.push(rs.doc);
    files.push(rs.src.file);
    if (!rs.schemaOk) return;
    const ctx: CompileContext = { src: rs.src, vars, brokerSets, ruleSet: inc, problems, roots };
    rules.push(...checkRuleList(ctx, rs, rules.length, names, problems));
  });
  const ctx: CompileContext = { src: p.src, vars, brokerSets, ruleSet: "", problems, roots };
  rules.push(...checkRuleList(ctx, { ...p, doc: { ...doc, rules: doc.rules ?? [] } as never }, rules.length, names, problems));

  const defaults = compileThen(ctx, ["defaults"], doc.defaults, (path, msg, key) => problems.push(p.src.problem(path, msg, undefined, { key })));
  checkConflicts(rules, problems);
  if (problems.length !== before) return undefined;
  const defaultSources: Record<string, string> = {};
  const at = (path: Array<string | number>) => {
    const { line, col } = p.src.pos(path, { key: true });
    return `${p.src.file}:${line}:${col}`;
  };
  for (const [k] of defaults.configuration) defaultSources[k] = at(["defaults", "configuration", k]);
  if (defaults.brokerSet !== undefined) defaultSources.brokerSet = at(["defaults", "brokerSet"]);
  return {
    name: doc.metadata.name,
    version: doc.metadata.version,
    hash: policySetHash(doc, includedDocs),
    files,
    vars,
    brokerSets,
    defaults,
    defaultSources,
    rules,
    roots: [...roots].sort(),
  };
}

function checkRuleList(ctx: CompileContext, parsed: Parsed<{ rules: RuleSetDoc["rules"] }>, offset: number, names: Map<string, string>, problems: PolicyProblem[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  (parsed.doc.rules ?? []).forEach((rule, i) => {
    if (parsed.badRules.has(i)) return;
    const where = `${ctx.src.file}:${ctx.src.pos(["rules", i]).line}`;
    const prev = names.get(rule.name);
    if (prev) problems.push(ctx.src.problem(["rules", i, "name"], `duplicate rule name, first defined at ${prev}`, rule.name));
    else names.set(rule.name, where);
    // a duplicate is still compiled so its other problems show up in the same run
    const c = compileRule(ctx, ["rules", i], rule, offset + out.length);
    if (c && !prev) out.push(c);
  });
  return out;
}

/**
 * Two rules at the same priority setting different outcomes could both fire, and which one
 * wins would then hang on declaration order: a load error, so the author states it.
 */
function checkConflicts(rules: CompiledRule[], problems: PolicyProblem[]): void {
  const byPriority = new Map<number, CompiledRule[]>();
  for (const r of rules) {
    if (!r.then.outcome) continue;
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  for (const list of byPriority.values()) {
    const first = list[0]!;
    for (const r of list.slice(1)) {
      if (r.then.outcome !== first.then.outcome) {
        const [file, line, col] = splitSource(r.source);
        problems.push({ file, line, col, rule: r.name, message: `outcome "${r.then.outcome}" conflicts with rule "${first.name}" (outcome "${first.then.outcome}", ${first.source}) at the same priority ${r.priority}; give one of them a higher priority` });
      }
    }
  }
}

function splitSource(source: string): [string, number, number] {
  const m = /^(.*):(\d+):(\d+)$/.exec(source)!;
  return [m[1]!, Number(m[2]), Number(m[3])];
}

function listYaml(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      if (recursive) out.push(...listYaml(p, true));
    } else if (YAML_FILE.test(name)) out.push(p);
  }
  return out;
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** paths as the user typed them when under the working directory, so problems are clickable */
export function display(p: string): string {
  const abs = resolve(p);
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}
