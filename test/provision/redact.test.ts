/**
 * What the audit log keeps of a node's configuration: secret-looking keys censored (the same
 * verdict every time a key is seen, from the cache or not), everything else as decided.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { REDACTED, redactConfiguration } from "../../src/provision/redact.js";
import { redactRecord } from "../../src/provision/audit.js";
import type { DecisionRecord } from "../../src/types/index.js";

const CFG = {
  "plugin.choria.middleware_hosts": "nats://b1:4222",
  "plugin.choria.server.provision": "false",
  "plugin.security.provider": "choria",
  "plugin.choria.network.password": "hunter2",
  "plugin.nats.token": "t0k",
  "plugin.choria.registration.file_content.target": "",
  "plugin.security.choria.seed_file": "/etc/seed",
  "plugin.choria.private_key": "k",
  "identity_key": "v",
  "key": "x",
  "monkey": "not a secret",
  "plugin.choria.broker_password": "",
};

test("secret-looking keys are censored, empty values and other keys are kept", () => {
  // twice: the second pass answers from the verdict cache and must say the same
  for (let pass = 0; pass < 2; pass++) {
    const r = redactConfiguration(CFG);
    assert.equal(r["plugin.choria.network.password"], REDACTED);
    assert.equal(r["plugin.nats.token"], REDACTED);
    assert.equal(r["plugin.security.choria.seed_file"], REDACTED);
    assert.equal(r["plugin.choria.private_key"], REDACTED);
    assert.equal(r["identity_key"], REDACTED);
    assert.equal(r["key"], REDACTED);
    assert.equal(r["monkey"], "not a secret");
    assert.equal(r["plugin.choria.broker_password"], "", "an empty secret stays empty: it says none was set");
    assert.equal(r["plugin.choria.middleware_hosts"], "nats://b1:4222");
    assert.equal(Object.keys(r).length, Object.keys(CFG).length);
  }
  assert.equal(CFG["plugin.nats.token"], "t0k", "the decision's own configuration is not changed");
});

test("a caller's own pattern is used as given", () => {
  const r = redactConfiguration({ "a.b": "1", "plugin.nats.token": "t" }, /^a\./);
  assert.deepEqual(r, { "a.b": REDACTED, "plugin.nats.token": "t" });
});

test("an audit record carries the censored configuration", () => {
  const rec = { identity: "n1", time: "t", outcome: "configure", reason: "", fired: [], durations: {}, configuration: CFG } as unknown as DecisionRecord;
  const line = JSON.stringify(redactRecord(rec));
  assert.ok(!line.includes("hunter2") && !line.includes("t0k"));
  assert.ok(line.includes("nats://b1:4222"));
});
