/**
 * Documentation checks: the generated configuration reference matches the schema, every metric
 * is documented, relative links in README.md and docs/*.md resolve (files and #anchors), and
 * README's quick start names exactly the test command CI runs (`npm test`, see .ci/run).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createMetrics } from "../../src/metrics/metrics.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DOCS = join(ROOT, "docs");
const read = (p: string) => readFileSync(p, "utf8");

interface Generator {
  renderConfigDocs(schema: unknown, loaderSource: string): string;
  loadInputs(): { schema: unknown; loaderSource: string };
  configKeys(schema: unknown): Array<[string, { description?: string }]>;
  NOTES: Record<string, string>;
  PAGE_PATH: string;
}

async function generator(): Promise<Generator> {
  // a computed specifier: the generator is plain .mjs with no type declarations
  const url = pathToFileURL(join(ROOT, "scripts", "gen-config-docs.mjs")).href;
  return (await import(url)) as Generator;
}

test("docs/configuration.md is what scripts/gen-config-docs.mjs generates from the schema", async () => {
  const g = await generator();
  const { schema, loaderSource } = g.loadInputs();
  const want = g.renderConfigDocs(schema, loaderSource);
  const have = existsSync(g.PAGE_PATH) ? read(g.PAGE_PATH) : "";
  if (have !== want) {
    const a = have.split("\n");
    const b = want.split("\n");
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    assert.fail(`docs/configuration.md is out of date (first difference at line ${i + 1}):\n  page:      ${a[i] ?? "(end)"}\n  generated: ${b[i] ?? "(end)"}\nrun: node scripts/gen-config-docs.mjs`);
  }
});

test("every configuration key is described (in the schema, or in the generator's notes)", async () => {
  const g = await generator();
  const { schema } = g.loadInputs();
  const keys = g.configKeys(schema);
  assert.ok(keys.length > 40, `only ${keys.length} keys found`);
  const missing = keys.filter(([p, n]) => !(n.description || g.NOTES[p])).map(([p]) => p);
  assert.deepEqual(missing, [], `keys without a description: ${missing.join(", ")}`);
});

test("every metric in src/metrics/metrics.ts is in docs/metrics.md", async () => {
  const m = createMetrics("docs", { defaultMetrics: false });
  const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  assert.ok(names.length >= 30, `only ${names.length} metrics registered`);
  const page = read(join(DOCS, "metrics.md"));
  const missing = names.filter((n) => !page.includes("`" + n + "`"));
  assert.deepEqual(missing, [], `metrics missing from docs/metrics.md: ${missing.join(", ")}`);
  // and the source file itself names no metric the registry lacks (a definition kept out of createMetrics)
  const inSource = [...read(join(ROOT, "src/metrics/metrics.ts")).matchAll(/"(choria_provisioner_[a-z0-9_]+)"/g)].map((x) => x[1]!).filter((n) => !n.endsWith("_process_"));
  assert.deepEqual(inSource.filter((n) => !names.includes(n)), []);
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, duplicates numbered. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const text = h[1]!.replace(/`/g, "").replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function markdownFiles(): string[] {
  const out = [join(ROOT, "README.md")];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith(".md")) out.push(p);
    }
  };
  walk(DOCS);
  return out;
}

/** [text](target) outside code fences and inline code */
function links(markdown: string): string[] {
  const out: string[] = [];
  let fence = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    const text = line.replace(/`[^`]*`/g, "");
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push(m[1]!);
  }
  return out;
}

test("relative links in README.md and docs/**/*.md resolve, anchors included", () => {
  const files = markdownFiles();
  assert.ok(files.length >= 10, `only ${files.length} pages`);
  const problems: string[] = [];
  for (const file of files) {
    const md = read(file);
    for (const target of links(md)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [path, anchor] = target.split("#", 2) as [string, string | undefined];
      const dest = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
      const where = `${relative(ROOT, file)}: (${target})`;
      if (!existsSync(dest)) {
        problems.push(`${where}: no such file`);
        continue;
      }
      if (anchor && dest.endsWith(".md") && !anchors(read(dest)).has(anchor)) problems.push(`${where}: no heading #${anchor}`);
    }
  }
  assert.deepEqual(problems, []);
});

test("docs/index.md lists every page in docs/", () => {
  const index = read(join(DOCS, "index.md"));
  const pages = readdirSync(DOCS).filter((f) => f.endsWith(".md") && f !== "index.md");
  const missing = pages.filter((p) => !index.includes(`](${p})`));
  assert.deepEqual(missing, []);
});

test("README's quick start is exactly the demo and `npm test`, the command CI runs", () => {
  const readme = read(join(ROOT, "README.md"));
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(readme);
  assert.ok(section, "README has a '## Quick start' section");
  const block = /```(?:sh|bash|console)?\n([\s\S]*?)```/.exec(section[1]!);
  assert.ok(block, "the quick start has a code block");
  const commands = block[1]!
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter(Boolean);
  assert.deepEqual(commands, ["npm ci && npm run demo", "npm test"]);
  // CI runs the command README names: keep .ci/run and README in step
  const ci = read(join(ROOT, ".ci", "run"));
  assert.match(ci, /^npm test$/m);
  const pkg = JSON.parse(read(join(ROOT, "package.json"))) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.test && pkg.scripts.demo, "package.json defines test and demo");
});
