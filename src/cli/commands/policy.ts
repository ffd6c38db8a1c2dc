import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { Option } from "commander";
import { checkPolicySets, formatProblem, inventoryFromFile, InventoryFileError, loadPolicySet, PolicyLoadError, renderExplanation, type PolicySet } from "../../policy/index.js";
import { renderDecision } from "../../policy/render.js";
import { locatePolicyTests, NoPolicyTestsError, runPolicyTests, type TestRun, type UpdateMode } from "../../policy/testing.js";
import { reportJson, reportJunit, reportTap, reportText } from "../../policy/report.js";
import { diffPolicies } from "../../policy/diff.js";
import { numberArg } from "../args.js";
import { compareWithAudit, readInventoryDir, type CompareResult, type InventoryEntry } from "../../policy/batch.js";
import { redactConfiguration } from "../../provision/redact.js";
import type { Inventory } from "../../types/index.js";


interface DirOptions {
  policies: string;
  rules?: string;
  policy?: string;
}

function fail(message: string, exitCode: number): never {
  throw Object.assign(new Error(message), { exitCode });
}

/** loads the policy set or prints every problem and exits 2 (a broken policy is not a test failure) */
async function load(o: DirOptions): Promise<PolicySet> {
  requirePoliciesDir(o.policies);
  try {
    return await loadPolicySet({ policiesDir: o.policies, ...(o.rules ? { rulesDir: o.rules } : {}), ...(o.policy ? { policy: o.policy } : {}) });
  } catch (e) {
    if (e instanceof PolicyLoadError) {
      for (const p of e.problems) process.stderr.write(formatProblem(p) + "\n");
      fail(`policy set is not valid (${e.problems.length} problem${e.problems.length === 1 ? "" : "s"})`, 2);
    }
    throw e;
  }
}

/** a missing policies directory is a usage error: name where it was looked for and the flag */
function requirePoliciesDir(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`no policies directory at ${resolve(dir)}; give the directory with --policies DIR`, 2);
}

interface EvalOptions extends DirOptions {
  inventory?: string;
  inventories?: string;
  identity?: string;
  explain: boolean;
  format: "text" | "json" | "jsonl";
}

/** one node's decision (and explanation) in the chosen format; text output names the file when there are several */
async function renderEval(ps: PolicySet, inv: Inventory, file: string, o: EvalOptions, many: boolean): Promise<string> {
  const ex = o.explain ? await ps.explain(inv) : undefined;
  const d = ex ? ex.decision : await ps.evaluate(inv);
  const json = ex ? { ...d, explanation: ex.rules } : d;
  if (o.format === "jsonl") return JSON.stringify({ identity: inv.identity, file, ...json }) + "\n";
  if (o.format === "json") return JSON.stringify(json, null, 2) + "\n";
  const head = many ? `# ${file}\n` : "";
  const tail = ex ? "\n\nexplanation (merge order):\n" + renderExplanation(ex) : "";
  return head + renderDecision(inv.identity, d) + tail + "\n" + (many ? "\n" : "");
}

function renderComparison(r: CompareResult, format: "text" | "json" | "jsonl"): string {
  if (format === "json") return JSON.stringify(r, null, 2) + "\n";
  if (format === "jsonl") return r.differ.map((x) => JSON.stringify(x) + "\n").join("");
  const out = [`policy ${r.policy.name} ${r.policy.version} ${r.policy.hash}`];
  for (const n of r.differ) {
    const live = n.live.policy ? ` (${n.live.policy.name} ${n.live.policy.version})` : "";
    out.push(`${n.identity}: live ${n.live.outcome}${live}, policy ${n.now.outcome}`);
    for (const c of n.changes) if (c.key !== "outcome") out.push(`  ${c.key}: ${c.from === undefined ? "(unset)" : JSON.stringify(c.from)} -> ${c.to === undefined ? "(unset)" : JSON.stringify(c.to)}`);
  }
  out.push(`${r.differ.length} of ${r.compared} nodes differ` + (r.noInventory.length ? `; ${r.noInventory.length} audited node${r.noInventory.length === 1 ? "" : "s"} had no inventory in the directory` : ""));
  return out.join("\n") + "\n";
}

function dirOptions(cmd: Command): Command {
  return cmd
    .option("--policies <dir>", "directory holding Policy documents", "policies")
    .option("--rules <dir>", "directory holding RuleSet documents (default: rules/ next to the policies directory)")
    .option("--policy <name>", "policy to use when the directory holds several");
}

function updateMode(v: true | string | undefined): UpdateMode | undefined {
  if (v === undefined) return undefined;
  if (v === true || v === "empty") return "empty";
  if (v === "all") return "all";
  fail(`--update takes no value or "all", got ${JSON.stringify(v)}`, 2);
}

/** every case --update changed, and loudly every failing one, rewritten or not */
function reportUpdates(run: TestRun): string {
  const out: string[] = [];
  const updated = new Map((run.updates ?? []).map((u) => [u.source, u]));
  for (const u of run.updates ?? []) if (u.change === "filled") out.push(`filled    ${u.source} ${u.suite} / ${u.name}`);
  for (const r of run.results.filter((r) => !r.passed || updated.get(r.source)?.change === "rewritten")) {
    const u = updated.get(r.source);
    const was = (u?.failures ?? r.failures).join("; ");
    if (u) out.push(`REWROTE A FAILING CASE ${r.source} ${r.suite} / ${r.name}: it now expects what the policy decides; it failed with: ${was}`);
    else out.push(`FAILING, NOT UPDATED   ${r.source} ${r.suite} / ${r.name}: ${was} (--update=all accepts the current decision)`);
  }
  const filled = (run.updates ?? []).filter((u) => u.change === "filled").length;
  out.push(`updated ${updated.size} case${updated.size === 1 ? "" : "s"}: ${filled} empty filled, ${updated.size - filled} failing rewritten`);
  return out.join("\n") + "\n";
}

export function register(program: Command): void {
  const policy = program.command("policy").description("check, evaluate, test and diff provisioning policies");

  dirOptions(policy.command("check"))
    .description("validate every policy and rule set; prints file:line:col: rule: message per problem")
    .action((o: DirOptions) => {
      requirePoliciesDir(o.policies);
      const { problems, policies } = checkPolicySets({ policiesDir: o.policies, ...(o.rules ? { rulesDir: o.rules } : {}) });
      // what would be in force: the same name, version and hash as /status and policy_info show
      for (const p of policies) process.stdout.write(`policy ${p.name} ${p.version} ${p.hash} (${p.rules} rule${p.rules === 1 ? "" : "s"}, ${p.file})\n`);
      for (const p of problems) process.stdout.write(formatProblem(p) + "\n");
      if (problems.length) {
        process.stderr.write(`${problems.length} problem${problems.length === 1 ? "" : "s"}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write("ok\n");
      }
    });

  dirOptions(policy.command("eval"))
    .description("evaluate the policy for one node (or a directory of nodes) and print the decision exactly as the daemon would apply it")
    .option("--inventory <file>", "rpcutil#inventory reply data as a node returns it, or a RecordedInventory file")
    .option("--inventories <dir>", "evaluate every *.json inventory in this directory in one process (e.g. the daemon's `record` directory)")
    .option("--identity <name>", "node identity (default: from the file, or its name without .json)")
    .option("--explain", "show every rule, each condition, the fact value seen and the result", false)
    .addOption(new Option("--format <format>", "output format; jsonl: one JSON object per node on one line, with identity and file").choices(["text", "json", "jsonl"]).default("text"))
    .action(async (o: EvalOptions) => {
      if (!o.inventory === !o.inventories) fail("policy eval needs exactly one of --inventory <file> or --inventories <dir>", 2);
      if (o.inventories && o.identity) fail("--identity names one node; it cannot be used with --inventories", 2);
      let entries: InventoryEntry[];
      try {
        entries = o.inventories ? readInventoryDir(o.inventories) : [{ file: o.inventory!, inventory: inventoryFromFile(o.inventory!, o.identity) }];
      } catch (e) {
        if (e instanceof InventoryFileError) fail(e.message, 2);
        throw e;
      }
      const ps = await load(o);
      let bad = 0;
      for (const e of entries) {
        if (!e.inventory) {
          bad++;
          process.stderr.write(e.error + "\n");
          if (o.format === "jsonl") process.stdout.write(JSON.stringify({ file: e.file, error: e.error }) + "\n");
          continue;
        }
        process.stdout.write(await renderEval(ps, e.inventory, e.file, o, entries.length > 1));
      }
      if (bad) fail(`${bad} of ${entries.length} inventory file${entries.length === 1 ? "" : "s"} could not be read`, 2);
    });

  dirOptions(policy.command("compare"))
    .description("list nodes whose decision in an audit log (a helper's, or an older policy's) differs from what the current policy decides for their recorded inventory")
    .requiredOption("--audit <file>", "the daemon's audit log (decisions.jsonl): the latest decision per node is compared")
    .requiredOption("--inventories <dir>", "recorded inventories of the same nodes (the daemon's `record` directory)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json", "jsonl"]).default("text"))
    .option("--exit-code", "exit 1 when any decision differs", false)
    .action(async (o: DirOptions & { audit: string; inventories: string; format: "text" | "json" | "jsonl"; exitCode: boolean }) => {
      const ps = await load(o);
      let r: CompareResult;
      try {
        r = await compareWithAudit(ps, o.audit, o.inventories, redactConfiguration);
      } catch (e) {
        if (e instanceof InventoryFileError) fail(e.message, 2);
        throw e;
      }
      process.stdout.write(renderComparison(r, o.format));
      if (o.exitCode && r.differ.length) process.exitCode = 1;
    });

  policy
    .command("test")
    .description("run PolicyTest cases: exit 0 all pass, 1 failures (or coverage below --threshold), 2 broken policies or tests")
    .argument("[dir]", "directory (searched recursively) or file holding PolicyTest documents (default: the policies directory, then tests/ beside it)")
    .option("--policies <dir>", "policies directory for test files that do not name one", "policies")
    .option("--rules <dir>", "rules directory for test files that do not name one")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json", "junit", "tap"]).default("text"))
    .option("--coverage", "list rules and conditions no case exercised, and fact paths no recorded inventory resolved", false)
    .option("--threshold <percent>", "with --coverage: fail below this coverage", numberArg({ min: 0, max: 100, integer: false }))
    .option("--update [which]", "write the current decisions into empty expectations (expect: {}); --update=all also rewrites failing ones, keeping the keys they have")
    .action(async (given: string | undefined, o: { policies: string; rules?: string; format: "text" | "json" | "junit" | "tap"; coverage: boolean; threshold?: number; update?: true | string }) => {
      const update = updateMode(o.update);
      const coverage = o.coverage || o.threshold !== undefined;
      let dir = given;
      if (dir === undefined) {
        const found = locatePolicyTests(o.policies);
        if (!found.dir) fail(new NoPolicyTestsError(found.searched).message, 2);
        dir = found.dir;
      }
      const run = await runPolicyTests({ dir, policiesDir: o.policies, ...(o.rules ? { rulesDir: o.rules } : {}), coverage, update });
      const report = { text: reportText, json: reportJson, junit: reportJunit, tap: reportTap }[o.format];
      process.stdout.write(report(run));
      if (run.problems.length) process.exitCode = 2;
      else if (run.results.some((r) => !r.passed && !run.updates?.some((u) => u.source === r.source))) process.exitCode = 1;
      else if (o.threshold !== undefined && run.coverage && run.coverage.percent < o.threshold) {
        process.stderr.write(`coverage ${run.coverage.percent}% is below the threshold ${o.threshold}%\n`);
        process.exitCode = 1;
      }
      if (update) process.stderr.write(reportUpdates(run));
    });

  dirOptions(policy.command("diff"))
    .description("evaluate recorded inventories with two versions of the policies and list every node whose decision changes")
    .requiredOption("--from <ref>", "git ref of the old policies")
    .option("--to <ref>", "git ref of the new policies, or 'worktree'", "worktree")
    .requiredOption("--inventories <dir>", "directory of recorded inventories (*.json)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .option("--exit-code", "exit 1 when any decision changes", false)
    .action(async (o: DirOptions & { from: string; to: string; inventories: string; format: "text" | "json"; exitCode: boolean }) => {
      let r;
      try {
        r = await diffPolicies({ from: o.from, to: o.to, inventoriesDir: o.inventories, policiesDir: o.policies, ...(o.rules ? { rulesDir: o.rules } : {}), ...(o.policy ? { policy: o.policy } : {}) });
      } catch (e) {
        if (e instanceof PolicyLoadError) {
          for (const p of e.problems) process.stderr.write(formatProblem(p) + "\n");
          fail("policy set is not valid", 2);
        }
        if (e instanceof InventoryFileError) fail(e.message, 2);
        fail((e as Error).message, 2);
      }
      if (o.format === "json") process.stdout.write(JSON.stringify(r, null, 2) + "\n");
      else {
        const out = [`from ${r.from.name} ${r.from.version} ${r.from.hash}`, `to   ${r.to.name} ${r.to.version} ${r.to.hash}`];
        for (const n of r.changed) {
          out.push(`${n.identity}: ${n.from === n.to ? n.from : `${n.from} -> ${n.to}`}`);
          for (const c of n.changes) out.push(`  ${c.key}: ${c.from === undefined ? "(unset)" : JSON.stringify(c.from)} -> ${c.to === undefined ? "(unset)" : JSON.stringify(c.to)}`);
        }
        out.push(`${r.changed.length} of ${r.nodes} nodes change`);
        // the sets a guarded rollout's canary is really testing: nothing has arrived there yet under the old version
        if (r.introducedBrokerSets.length) {
          out.push("broker sets this change introduces (the canary guards them):");
          for (const b of r.introducedBrokerSets) out.push(`  ${b.name ?? "(unnamed)"} [${b.brokers.join(", ")}]: ${b.nodes} node${b.nodes === 1 ? "" : "s"}`);
        } else out.push("no broker set is introduced");
        process.stdout.write(out.join("\n") + "\n");
      }
      if (o.exitCode && r.changed.length) process.exitCode = 1;
    });
}
