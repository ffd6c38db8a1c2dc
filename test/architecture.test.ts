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
      for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
        const target = relative(SRC, join(file, "..", m[1]!)).split(sep)[0]!;
        if (target !== folder && !rule.has(target)) breaches.push(`${relative(ROOT, file)} imports ${target}/`);
      }
    }
  }
  assert.deepEqual(breaches, []);
});
