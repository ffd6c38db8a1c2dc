/** A configure decision that cannot be sent is deferred with a reason naming the key at fault. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { unconfigurable } from "../../src/provision/flow-steps.js";

const ok = { brokers: ["b:4222"], configuration: { "plugin.choria.server.provision": "false" } };

test("a sendable decision has no reason", () => {
  assert.equal(unconfigurable(ok), undefined);
});

test("missing brokers name plugin.choria.middleware_hosts, and only that", () => {
  const why = unconfigurable({ ...ok, brokers: [] })!;
  assert.match(why, /no brokers: plugin\.choria\.middleware_hosts is empty or missing/);
  assert.doesNotMatch(why, /server\.provision/);
});

test("provisioning left on names plugin.choria.server.provision and its value, and only that", () => {
  assert.match(unconfigurable({ ...ok, configuration: {} })!, /^not configuring: plugin\.choria\.server\.provision is missing, it must be "false"$/);
  const why = unconfigurable({ ...ok, configuration: { "plugin.choria.server.provision": "true" } })!;
  assert.match(why, /plugin\.choria\.server\.provision is "true"/);
  assert.doesNotMatch(why, /brokers/);
});

test("both missing: both named", () => {
  assert.match(unconfigurable({ brokers: [], configuration: {} })!, /middleware_hosts.*; plugin\.choria\.server\.provision is missing/);
});
