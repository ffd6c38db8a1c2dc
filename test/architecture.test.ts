import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";

// docs/architecture.md's module table is the rule; this keeps the code to it (and the table honest).
const ROOT = new URL("../", import.meta.url).pathname;
const SRC = join(ROOT, "src");

function allowedImports(): Map<string, Set<string> | "everything"> {
  const doc = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");
  const out = new Map<string, Set<string> | "everything">();
  for (const m of doc.matchAll(/^\| ([a-z]+)\/ \| [^|]+ \| ([^|]+) \|$/gm)) {
    const cell = m[2]!.trim();
    if (cell === "everything") out.set(m[1]!, "everything");
    // "a, b, c; prose" or "a (prose)": the folder names before any prose
    else out.set(m[1]!, new Set(cell === "none" ? [] : cell.split(";")[0]!.split(",").map((w) => w.trim().split(/[\s(]/)[0]!)));
  }
  return out;
}

/** docs/architecture.md's "Packages with one home" table: package -> the src/ folders that may import it */
function packageHomes(): Map<string, Set<string>> {
  const doc = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");
  const out = new Map<string, Set<string>>();
  for (const m of doc.matchAll(/^\| `([^`]+)` \| ([a-z, ]+) \|$/gm)) out.set(m[1]!, new Set(m[2]!.split(",").map((w) => w.trim())));
  return out;
}

/** every module specifier a file imports, re-exports, import()s or require()s */
function specifiers(file: string): string[] {
  return [...readFileSync(file, "utf8").matchAll(/(?:\bfrom|\bimport|\brequire)\s*\(?\s*["']([^"']+)["']/g)].map((m) => m[1]!);
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("every src/ folder imports only what docs/architecture.md allows it", () => {
  const allowed = allowedImports();
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  assert.deepEqual([...allowed.keys()].sort(), folders.sort(), "the table lists exactly the folders of src/");
  const breaches: string[] = [];
  for (const folder of folders) {
    const rule = allowed.get(folder)!;
    if (rule === "everything") continue;
    for (const file of files(join(SRC, folder))) {
      for (const spec of specifiers(file).filter((x) => x.startsWith("."))) {
        const target = relative(SRC, join(file, "..", spec)).split(sep)[0]!;
        if (target !== folder && !rule.has(target)) breaches.push(`${relative(ROOT, file)} imports ${target}/`);
      }
    }
  }
  assert.deepEqual(breaches, []);
});

test("a package with one home is imported only by the folders docs/architecture.md names", () => {
  const homes = packageHomes();
  assert.deepEqual([...homes.keys()].sort(), ["asn1js", "better-sqlite3", "json-rules-engine", "nats", "pkijs"], "the table names the restricted packages");
  const folders = new Set(readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory()));
  for (const [pkg, allowed] of homes) for (const f of allowed) assert.ok(folders.has(f), `${pkg}'s home ${f}/ is a folder of src/`);
  const breaches: string[] = [];
  for (const file of files(SRC)) {
    const folder = relative(SRC, file).split(sep)[0]!;
    for (const spec of specifiers(file)) {
      const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
      const allowed = homes.get(pkg);
      if (allowed && !allowed.has(folder)) breaches.push(`${relative(ROOT, file)} imports ${pkg}`);
    }
  }
  assert.deepEqual(breaches, []);
});

test("cli/ and bench/ import nothing of each other", () => {
  const breaches: string[] = [];
  for (const file of files(join(SRC, "cli"))) for (const spec of specifiers(file)) if (relative(ROOT, join(file, "..", spec)).startsWith(`bench${sep}`)) breaches.push(`${relative(ROOT, file)} imports ${spec}`);
  for (const file of files(join(ROOT, "bench"))) for (const spec of specifiers(file)) if (relative(ROOT, join(file, "..", spec)).startsWith(`src${sep}cli${sep}`)) breaches.push(`${relative(ROOT, file)} imports ${spec}`);
  assert.deepEqual(breaches, []);
});

// arrival/ feeds back into which policy version decides, while provision/ is edited by others at
// the same time: they meet only in types/' DeciderGate, so neither can grow a dependency on the other
test("provision/ and arrival/ import nothing of each other", () => {
  const breaches: string[] = [];
  for (const [from, to] of [["provision", "arrival"], ["arrival", "provision"]] as const) {
    for (const file of files(join(SRC, from))) for (const spec of specifiers(file)) if (spec.startsWith(".") && relative(SRC, join(file, "..", spec)).split(sep)[0] === to) breaches.push(`${relative(ROOT, file)} imports ${spec}`);
  }
  assert.deepEqual(breaches, []);
});
