/** Every default comes from the schema: the settings of an empty document are the schema's defaults. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CONFIG_SCHEMA_PATH, parseDuration, resolveSettings, withDefaults, type ConfigFile } from "../../src/config/index.js";
import { defaultFlowOptions, flowOptionsFrom } from "../../src/provision/flow-options.js";

interface Schema {
  default?: unknown;
  properties?: Record<string, Schema>;
}
const schema = JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")) as Schema;

function schemaDefaults(s: Schema, path: string[] = []): Array<[string[], unknown]> {
  const out: Array<[string[], unknown]> = [];
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    if (sub.default !== undefined && typeof sub.default !== "object") out.push([[...path, k], sub.default]);
    out.push(...schemaDefaults(sub, [...path, k]));
  }
  return out;
}

/** sections that are off when absent: their keys' defaults apply once the section is written */
const OFF_WHEN_ABSENT: Record<string, ConfigFile> = {
  renewal: { arrival: { homes: [{ broker: "nats://home:4222", tls: { cert: "c.pem", key: "k.pem" } }] }, renewal: {} },
};

test("an empty document gets every default the schema names, and nothing it does not", () => {
  const d = withDefaults({}) as unknown as Record<string, unknown>;
  const found = schemaDefaults(schema);
  assert.ok(found.length > 30, `${found.length} defaults`);
  for (const [path, value] of found) {
    const section = OFF_WHEN_ABSENT[path[0]!];
    const doc = section ? (withDefaults(section) as unknown as Record<string, unknown>) : d;
    if (section) assert.equal(d[path[0]!], undefined, `${path[0]} stays off in an empty document`);
    assert.deepEqual(path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], doc), value, path.join("."));
  }
  assert.equal((d.features as Record<string, unknown>).pki, undefined, "pki's default depends on ed25519: settings decide it");
});

test("settings and the flow's options carry the schema's values", () => {
  const s = resolveSettings({}, {});
  const P = schema.properties!;
  const ms = (v: unknown) => parseDuration(v as string);
  assert.equal(s.workers, P.workers!.default);
  assert.equal(s.discoveryIntervalMs, ms(P.discovery!.properties!.interval!.default));
  assert.equal(s.holdAfterRefusalMs, ms(P.hold_after_refusal!.default));
  assert.equal(s.ca.timeoutMs, ms(P.ca!.properties!.timeout!.default));
  const f = defaultFlowOptions();
  assert.equal(f.steps.inventory.timeoutMs, ms(P.rpc!.properties!.inventory_timeout!.default));
  assert.equal(f.steps.configure.timeoutMs, ms(P.rpc!.properties!.provision_timeout!.default));
  assert.equal(f.steps.configure.maxTimeouts, P.rpc!.properties!.max_timeouts!.default);
  assert.equal(f.backoff.maxMs, ms(P.rpc!.properties!.backoff_max!.default));
  assert.equal(f.holdAfterRestartMs, ms(P.hold_after_restart!.default));
  // a configured value is not capped by a copy of its default
  const g = flowOptionsFrom(resolveSettings({ rpc: { provision_timeout: "60s", max_timeouts: 4 } }, {}));
  assert.deepEqual([g.steps.configure.timeoutMs, g.steps.configure.maxTimeouts, g.steps.restart.timeoutMs, g.steps.gencsr.maxTimeouts], [60_000, 4, 10_000, 1]);
});
