import type { Command } from "commander";
import { Option } from "commander";
import { checkPolicies, formatProblem, inventoryFromFile, InventoryFileError, loadPolicySet, PolicyLoadError, renderExplanation, type PolicySet } from "../../policy/index.js";
import { renderDecision } from "../../policy/render.js";

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

function dirOptions(cmd: Command): Command {
  return cmd
    .option("--policies <dir>", "directory holding Policy documents", "policies")
    .option("--rules <dir>", "directory holding RuleSet documents (default: rules/ next to the policies directory)")
    .option("--policy <name>", "policy to use when the directory holds several");
}

export function register(program: Command): void {
  const policy = program.command("policy").description("check, evaluate, test and diff provisioning policies");

  dirOptions(policy.command("check"))
    .description("validate every policy and rule set; prints file:line:col: rule: message per problem")
    .action((o: DirOptions) => {
      const problems = checkPolicies({ policiesDir: o.policies, ...(o.rules ? { rulesDir: o.rules } : {}) });
      for (const p of problems) process.stdout.write(formatProblem(p) + "\n");
      if (problems.length) {
        process.stderr.write(`${problems.length} problem${problems.length === 1 ? "" : "s"}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write("ok\n");
      }
    });

  dirOptions(policy.command("eval"))
    .description("evaluate the policy for one node and print the decision exactly as the daemon would apply it")
    .requiredOption("--inventory <file>", "rpcutil#inventory reply data as a node returns it, or a RecordedInventory file")
    .option("--identity <name>", "node identity (default: from the file, or its name without .json)")
    .option("--explain", "show every rule, each condition, the fact value seen and the result", false)
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (o: DirOptions & { inventory: string; identity?: string; explain: boolean; format: "text" | "json" }) => {
      let inv;
      try {
        inv = inventoryFromFile(o.inventory, o.identity);
      } catch (e) {
        if (e instanceof InventoryFileError) fail(e.message, 2);
        throw e;
      }
      const ps = await load(o);
      if (o.explain) {
        const ex = await ps.explain(inv);
        if (o.format === "json") process.stdout.write(JSON.stringify({ ...ex.decision, explanation: ex.rules }, null, 2) + "\n");
        else process.stdout.write(renderDecision(inv.identity, ex.decision) + "\n\nexplanation (merge order):\n" + renderExplanation(ex) + "\n");
        return;
      }
      const d = await ps.evaluate(inv);
      process.stdout.write(o.format === "json" ? JSON.stringify(d, null, 2) + "\n" : renderDecision(inv.identity, d) + "\n");
    });
}
