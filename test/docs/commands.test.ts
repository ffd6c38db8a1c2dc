/**
 * Commands the docs say work, run as written. A code block is run when the line before its
 * fence is a marker:
 *
 *   <!-- docs-test: run -->
 *   <!-- docs-test: run; replace "--nodes 2000" "--nodes 100"; replace "/var/lib/x" "$DOCS_INVENTORIES" -->
 *
 * `replace` shrinks sizes and points production paths at fixtures the test prepares ($DOCS_*
 * below). A ```sh block runs as one bash script (set -eo pipefail); a ```console block runs each
 * `$ ` line and checks that every output line shown (other than `...`; a policy hash matches any) is printed.
 * `choria-provisioner` on PATH is this checkout's CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPolicySet } from "../../src/policy/index.js";
import { readInventoryDir } from "../../src/policy/batch.js";
import type { DecisionRecord } from "../../src/types/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PAGES = ["README.md", "docs/migration.md", "docs/operations.md", "docs/policy-workflow.md", "docs/policy-language.md", "docs/sim.md", "docs/ca.md"];
const MARKER = /^\s*<!--\s*docs-test:\s*run\b(.*?)-->\s*$/;

interface Block {
  where: string;
  lang: string;
  body: string;
}

function markedBlocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const m = MARKER.exec(lines[i]!);
    if (!m) continue;
    // a block in a list item is indented: the fence's indentation is taken off every line
    const fence = /^(\s*)```(\w+)\s*$/.exec(lines[i + 1]!);
    assert.ok(fence, `${page}:${i + 1}: a docs-test marker must be followed by a code fence`);
    const indent = fence[1]!;
    const end = lines.indexOf(indent + "```", i + 2);
    assert.ok(end > 0, `${page}:${i + 2}: unterminated code block`);
    let body = lines.slice(i + 2, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join("\n");
    for (const r of m[1]!.matchAll(/replace\s+"([^"]*)"\s+"([^"]*)"/g)) {
      assert.ok(body.includes(r[1]!), `${page}:${i + 1}: replace "${r[1]}" does not occur in the block`);
      body = body.split(r[1]!).join(r[2]!);
    }
    out.push({ where: `${page}:${i + 2}`, lang: fence[2]!, body });
  }
  return out;
}

/** `$ ` lines (with their `\` or `|` continuations) and the output lines shown after each */
function consoleSteps(body: string): Array<{ command: string; shown: string[] }> {
  const steps: Array<{ command: string; shown: string[] }> = [];
  const lines = body.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("$ ")) {
      let command = line.slice(2);
      while (/[\\|]\s*$/.test(command) && i + 1 < lines.length) command = command.replace(/\\\s*$/, "") + "\n" + lines[++i];
      steps.push({ command, shown: [] });
    } else if (steps.length) steps.at(-1)!.shown.push(line);
  }
  return steps;
}

const squash = (s: string) => s.replace(/\s+/g, " ").trim();

/** a shown line is printed; a policy hash in it stands for any hash (it changes with every policy edit) */
function shownIn(line: string, printed: string): boolean {
  const pattern = squash(line)
    .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replace(/sha256:[0-9a-f]{64}/g, "sha256:[0-9a-f]{64}");
  return new RegExp(pattern).test(printed);
}

function run(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile("bash", ["-c", `set -eo pipefail\n${script}`], { cwd: ROOT, env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** the environment the blocks run in: the CLI on PATH and the $DOCS_* fixtures */
async function environment(): Promise<NodeJS.ProcessEnv> {
  const dir = mkdtempSync(join(tmpdir(), "docs-commands-"));
  const bin = join(dir, "choria-provisioner");
  writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${join(ROOT, "src/cli/main.ts")}" "$@"\n`);
  chmodSync(bin, 0o755);
  // an audit log of the fixture nodes as a helper might have decided them: the policy's own
  // decisions, with one node's loglevel changed so `policy compare` has a difference to show
  const inventories = join(ROOT, "inventories");
  const set = await loadPolicySet({ policiesDir: join(ROOT, "policies"), rulesDir: join(ROOT, "rules"), policy: "fleet" });
  const records: DecisionRecord[] = [];
  for (const e of readInventoryDir(inventories)) {
    const d = await set.evaluate(e.inventory!);
    const configuration = e.inventory!.identity === "web1.example.net" ? { ...d.configuration, loglevel: "debug" } : d.configuration;
    records.push({ identity: e.inventory!.identity, time: new Date(0).toISOString(), outcome: d.outcome, reason: d.reason, fired: [], configuration, durations: {} });
  }
  const audit = join(dir, "decisions.jsonl");
  writeFileSync(audit, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return { ...process.env, PATH: `${dir}:${process.env.PATH}`, DOCS_INVENTORIES: inventories, DOCS_AUDIT: audit, NO_COLOR: "1" };
}

const blocks = PAGES.flatMap(markedBlocks);

test("the commands the docs promise are marked to run", () => {
  const all = blocks.map((b) => b.body).join("\n");
  // the smoke test in operations.md and the migration loop in migration.md (issue 18)
  assert.match(all, /choria-provisioner demo --nodes \d+ (--timeout \d+ )?--faults drop=0\.02,bad_csr=0\.01/);
  assert.match(all, /policy eval .*--inventories/);
  assert.match(all, /policy compare [^]*?--audit/);
  assert.ok(blocks.length >= 6, `only ${blocks.length} marked blocks`);
});

test("every marked command in the docs runs and prints what the docs show", async () => {
  const env = await environment();
  // all at once: most of the time is the CLI's start-up, and the demo runs while the rest do
  const failures = await Promise.all(
    blocks.map(async (b): Promise<string[]> => {
      if (b.lang === "console") {
        const out: string[] = [];
        for (const step of consoleSteps(b.body)) {
          const r = await run(step.command, env);
          if (r.code !== 0) {
            out.push(`${b.where}: \`${step.command}\` exited ${r.code}:\n${r.stderr.slice(-2000)}`);
            continue;
          }
          const printed = squash(r.stdout + "\n" + r.stderr);
          for (const line of step.shown) {
            if (!line.trim() || line.trim() === "...") continue;
            if (!shownIn(line, printed)) out.push(`${b.where}: \`${step.command}\` did not print: ${line.trim()}`);
          }
        }
        return out;
      }
      const r = await run(b.body, env);
      return r.code === 0 ? [] : [`${b.where}: exited ${r.code}:\n${(r.stderr || r.stdout).slice(-2000)}`];
    }),
  );
  assert.deepEqual(failures.flat(), [], `run from ${relative(process.cwd(), ROOT) || "."}`);
});
