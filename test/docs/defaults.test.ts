/**
 * Defaults the docs state in prose agree with the code: migration.md's table and its translated
 * configuration (configuration.md is generated from the schema and checked in docs.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfigText, resolveSettings } from "../../src/config/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const migration = readFileSync(join(ROOT, "docs/migration.md"), "utf8");
const schema = JSON.parse(readFileSync(join(ROOT, "schemas/provisioner-config.json"), "utf8")) as { properties: Record<string, { default?: unknown }> };
const DEFAULT_WORKERS = resolveSettings({}, {}).workers;

test("the workers default is the same in the loader, the schema (configuration.md) and migration.md", () => {
  assert.equal(schema.properties.workers!.default, DEFAULT_WORKERS, "the loader takes its defaults from the schema");
  const stated = [...migration.matchAll(/`workers` \(default `(\d+)`\)/g)].map((m) => Number(m[1]));
  assert.ok(stated.length > 0, "migration.md states the workers default");
  assert.deepEqual(stated, stated.map(() => DEFAULT_WORKERS));
});

test("every `key` (default `value`) in migration.md's table matches the schema", () => {
  const problems: string[] = [];
  for (const m of migration.matchAll(/`([a-z_]+)` \(default `([^`]+)`\)/g)) {
    const [, key, value] = m as unknown as [string, string, string];
    const p = schema.properties[key];
    // keys only the reference has (the left column) are not in our schema
    if (!p || p.default === undefined) continue;
    if (String(p.default) !== value) problems.push(`${key}: migration.md says ${value}, the schema ${String(p.default)}`);
  }
  assert.deepEqual(problems, []);
});

test("migration.md's translated configuration loads and keeps the reference's helper parallelism", () => {
  const block = /```yaml\n(# here:[\s\S]*?)```/.exec(migration);
  assert.ok(block, "migration.md has the '# here:' configuration");
  const s = resolveSettings(parseConfigText(block[1]!, "docs/migration.md"), {});
  assert.equal(s.workers, DEFAULT_WORKERS);
  assert.equal(s.helperConcurrency, 4, "the reference example runs 4 workers, so 4 helpers");
});
