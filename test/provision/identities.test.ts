/**
 * Identities that are not DNS names are refused twice over: at intake (counted by reason, the
 * warnings summarised) and, independently, by the CA, which never signs such a CN or SAN.
 */
import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeLifecycle, lifecycleSubject, newLifecycleEvent } from "../../src/protocol/index.js";
import { Intake, type IntakeHooks } from "../../src/provision/intake.js";
import { WarnThrottle } from "../../src/provision/warn-throttle.js";
import { checkCsr, initBuiltinCa, openBuiltinCa, CsrRefusedError } from "../../src/ca/index.js";
import { closeNats, connectNats, startNatsServer } from "../../src/transport/index.js";
import { isDnsName } from "../../src/types/index.js";
import { makeCsr } from "../ca/csr-fixtures.js";

const HOSTILE = ["$(touch${IFS}/tmp/pwned)", "a;rm-rf", "/etc/passwd", "a b.example.net", "-lead.example.net", "x".repeat(64) + ".example.net", `${"a.".repeat(127)}ab`, "a..b", "trailing.", "", "under_score.example.net", "ünïcode.example.net"];
const GOOD = ["node1.example.net", "a", "x".repeat(63) + ".example.net", "1-2-3.example.net", "Mixed.Case.Example.NET"];

test("a DNS name is RFC 1123 labels, at most 253 characters", () => {
  for (const id of HOSTILE) assert.equal(isDnsName(id), false, JSON.stringify(id));
  for (const id of GOOD) assert.equal(isDnsName(id), true, id);
  assert.equal(isDnsName(`${"a.".repeat(126)}a`), true, "253 characters");
});

test("intake refuses identities that are not DNS names, or miss the configured pattern, with a counted reason", async () => {
  const srv = await startNatsServer();
  const nc = await connectNats({ servers: srv.url });
  const offered: string[] = [];
  const refused: Array<[string, string]> = [];
  const hooks: IntakeHooks = {
    offer: (id) => void offered.push(id),
    active: () => true,
    invalid: (_s, reason, detail) => void refused.push([reason, detail]),
    discoveryCycle: () => {},
    discoveryError: () => {},
    duplicate: () => {},
  };
  const intake = new Intake(nc, { discover: async () => [] }, hooks, { lifecycleComponent: "provision_mode_server", registration: false, legacyRegistration: false, discoveryIntervalMs: 0, discoveryTimeoutMs: 100, discoveryQuietMs: 50, discoverAtStart: false, identityPattern: /^(?:[a-z0-9-]+\.prod\.example\.net)$/ });
  intake.start();
  const ids = [...HOSTILE, "web1.prod.example.net", "web1.test.example.net"];
  for (const id of ids) nc.publish(lifecycleSubject("startup", "provision_mode_server"), encodeLifecycle(newLifecycleEvent("startup", id, "provision_mode_server", { version: "0.29.4" }), "choria"));
  await nc.flush();
  const until = Date.now() + 5000;
  while (offered.length + refused.length < ids.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await intake.stop();
  await closeNats(nc);
  await srv.stop();
  assert.deepEqual(offered, ["web1.prod.example.net"]);
  // an empty identity is refused by the lifecycle decoder itself (schema); every other is ours
  assert.equal(refused.filter(([r]) => r === "bad_identity").length, HOSTILE.length - 1);
  assert.deepEqual(refused.filter(([r]) => r === "identity_pattern").map(([, d]) => d), ['startup event from "web1.test.example.net", which does not match intake.identity_pattern: refused']);
  assert.ok(refused.some(([, d]) => d.includes(JSON.stringify("$(touch${IFS}/tmp/pwned)"))));
});

test("repeated warnings become one line, then one summary with the count per window", () => {
  const lines: Array<[Record<string, unknown>, string]> = [];
  const w = new WarnThrottle({ warn: ((f: Record<string, unknown>, m: string) => void lines.push([f, m])) as never, info: (() => assert.fail("a warning throttle logs at warn")) as never }, 60_000);
  for (let i = 0; i < 100_000; i++) w.warn(i % 2 ? "intake/event/not_json" : "intake/registration/bad_identity", { i }, `bad message ${i}`);
  assert.equal(lines.length, 2, "the first of each kind at once");
  w.stop();
  assert.equal(lines.length, 4, "one summary per kind");
  const repeated = lines.slice(2).map(([f]) => f.repeated as number);
  assert.deepEqual(repeated, [49_999, 49_999]);
  assert.match(lines[2][1], /^49999 more like this in the last 60s, the latest: bad message 99998$/);
});

test("routine lines in floods (nodes nothing answers for) are summarised the same way, at info", () => {
  const lines: string[] = [];
  const w = new WarnThrottle({ info: ((_f: Record<string, unknown>, m: string) => void lines.push(m)) as never, warn: (() => assert.fail("an info throttle logs at info")) as never }, 60_000, "info");
  for (let i = 0; i < 2000; i++) w.warn("gone", { identity: `phantom-${i}.ghost.example.net` }, `not in provisioning mode: phantom-${i}`);
  w.stop();
  assert.deepEqual(lines, ["not in provisioning mode: phantom-0", "1999 more like this in the last 60s, the latest: not in provisioning mode: phantom-1999"]);
});

test("the CA refuses a CSR whose CN or SAN is not a DNS name, and the built-in CA never signs one", async () => {
  for (const cn of ["$(touch${IFS}/tmp/pwned)", "a;rm-rf", "/etc/passwd"]) {
    const csr = await makeCsr({ cn, key: { kind: "ec", curve: "P-256" } });
    const r = checkCsr(csr, { identity: cn });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, "bad_name", cn);
  }
  const good = await makeCsr({ cn: "ok.example.net", dns: ["ok.example.net"], key: { kind: "ec", curve: "P-256" } });
  const bad = checkCsr(good, { identity: "ok.example.net", allowedSans: ["a;rm-rf"] });
  assert.equal(!bad.ok && bad.code, "bad_name", "a SAN granted by policy is checked too");

  const dir = mkdtempSync(join(tmpdir(), "cp-ca-names-"));
  await initBuiltinCa(dir, { key: "ecdsa" });
  const ca = await openBuiltinCa(dir, { workers: 1 });
  try {
    const csr = await makeCsr({ cn: "a;rm-rf", key: { kind: "ec", curve: "P-256" } });
    await assert.rejects(ca.sign({ identity: "a;rm-rf", csrPem: csr, profile: { validityDays: 1, sans: [] } }), (e: unknown) => e instanceof CsrRefusedError && e.code === "bad_name");
    await assert.rejects(ca.sign({ identity: "ok.example.net", csrPem: good, profile: { validityDays: 1, sans: ["/etc/passwd"] } }), (e: unknown) => e instanceof CsrRefusedError && e.code === "bad_name");
    const ok = await ca.sign({ identity: "ok.example.net", csrPem: good, profile: { validityDays: 1, sans: ["192.0.2.1"] } });
    assert.match(ok.certificatePem, /BEGIN CERTIFICATE/);
  } finally {
    await ca.close();
  }
});
