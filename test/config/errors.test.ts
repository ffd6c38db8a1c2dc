/**
 * Configuration errors as an operator reads them: each problem once, at the line and column of
 * what is wrong, and keys of the reference provisioner pointed at what to write instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfigError, loadConfigFile, parseConfigText, resolveSettings } from "../../src/config/index.js";

function problems(text: string): string[] {
  try {
    parseConfigText(text, "prov.yaml");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split("\n");
  }
  assert.fail("the document was accepted");
}

test("an unknown key is reported at its own line and column, nested or not", () => {
  assert.deepEqual(problems("site: dc1\nbogus: 1\n"), ["prov.yaml:2:1: bogus: unknown key"]);
  assert.deepEqual(problems("site: dc1\ndiscovery:\n  interval: 10s\n  quite: 300ms\n"), ["prov.yaml:4:3: discovery.quite: unknown key; did you mean quiet?"]);
});

test("a bad duration is one message, not one per branch of the schema", () => {
  assert.deepEqual(problems("discovery:\n  interval: soon\n"), ['prov.yaml:2:13: discovery.interval: must be a duration such as 500ms, 10s, 5m, 1h, 30d, 1y or a number of milliseconds, got "soon"']);
  assert.deepEqual(problems("broker: 42\n"), ["prov.yaml:1:9: broker: must be string or array, got 42"]);
  // a conditional requirement is one message too (no "must match then schema" beside it)
  assert.deepEqual(problems("features:\n  jwt: true\n"), ["prov.yaml:1:1: (top level): must have required property 'jwt_verify_cert'"]);
});

test("a missing file names the path and the reason, with no position", () => {
  assert.throws(() => loadConfigFile("/nonexistent/prov.yaml"), (e: unknown) => e instanceof ConfigError && e.message === "/nonexistent/prov.yaml: cannot read: ENOENT");
});

test("the reference provisioner's keys get 'did you mean' from the migration table", () => {
  const text = "interval: 1m\nloglevel: info\nmonitor_port: 8080\nfeatures:\n  upgrades: true\nbroker_port: 4222\n";
  const lines = problems(text);
  assert.equal(lines.length, 5, lines.join("\n"));
  assert.match(lines[0]!, /^prov\.yaml:1:1: interval: unknown key \(a key of the reference provisioner\): did you mean discovery\.interval\? \(docs\/migration\.md\)$/);
  assert.match(lines[1]!, /^prov\.yaml:2:1: loglevel: .*did you mean log\.level\?/);
  assert.match(lines[2]!, /^prov\.yaml:3:1: monitor_port: .*did you mean admin\.listen/);
  assert.match(lines[3]!, /^prov\.yaml:5:3: features\.upgrades: .*upgrade outcome of a policy/);
  assert.match(lines[4]!, /^prov\.yaml:6:1: broker_port: .*run the Choria Broker or nats-server/);
});

test("the document is validated again after flags are merged, naming where it came from", () => {
  assert.throws(
    () => resolveSettings({ log: { level: "loud" } }, {}, "prov.yaml with the command-line flags"),
    (e: unknown) => e instanceof ConfigError && e.message === 'prov.yaml with the command-line flags: log.level: must be one of trace, debug, info, warn, error, fatal, silent, got "loud"',
  );
});

test("every reference key in docs/migration.md's table is a key here or gets a hint", () => {
  const doc = readFileSync(new URL("../../docs/migration.md", import.meta.url), "utf8");
  const table = doc.slice(doc.indexOf("| reference | here | notes |"), doc.indexOf("A reference configuration and its translation"));
  const rows = table.split("\n").filter((l) => l.startsWith("| `") && !l.includes("choria.cfg"));
  const keys = rows.flatMap((r) => [...r.split(" | ")[0]!.matchAll(/`([a-z][a-z0-9_.]*)[^`]*`/g)].map((m) => m[1]!).filter((k) => !["true", "false"].includes(k)));
  assert.ok(keys.length >= 20, keys.join(" "));
  for (const key of keys) {
    const path = key.split(".");
    const text = path.reduceRight<string>((inner, k, i) => `${"  ".repeat(i)}${k}:${i === path.length - 1 ? " x" : ""}\n${inner}`, "");
    let message = "";
    try {
      parseConfigText(text, "m.yaml");
    } catch (e) {
      message = (e as Error).message;
    }
    if (message.includes(`${key}: unknown key`)) assert.match(message, /\(a key of the reference provisioner\)/, `${key} gets a hint: ${message}`);
  }
});
