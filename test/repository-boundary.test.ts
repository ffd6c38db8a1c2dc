/**
 * Nothing outside the repository: a clone with nothing beside it must pass the test command, so
 * no code or test may read the project's reference folder that lives beside some checkouts. The
 * official Choria files come from the go-choria Go module instead (test/helpers/go-choria-module.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

// built from parts so that this file does not match itself
const FORBIDDEN = [["..", "shared"].join("/"), ["", "work", "shared"].join("/"), "SHARED" + "_SPEC", "helpers/" + "shared.js"];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === "node_modules" || name.startsWith(".")) return [];
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|mts|mjs|js|json|sh)$/.test(name) ? [p] : [];
  });
}

test("no code, script, bench or test refers to a path outside the repository", () => {
  const files = ["src", "test", "scripts", "bench"].flatMap(walk);
  assert.ok(files.length > 100, `scanned ${files.length} files`);
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(f, "utf8").split("\n").forEach((line, i) => {
      for (const bad of FORBIDDEN) if (line.includes(bad)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
    });
  }
  assert.deepEqual(hits, []);
});
