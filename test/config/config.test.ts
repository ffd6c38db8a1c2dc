import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfigFile, parseConfigText, parseDuration, resolveSettings } from "../../src/config/index.js";

test("durations parse and bad ones are refused with the value named", () => {
  assert.equal(parseDuration("500ms", 0), 500);
  assert.equal(parseDuration("10s", 0), 10_000);
  assert.equal(parseDuration("5m", 0), 300_000);
  assert.equal(parseDuration(undefined, 42), 42);
  assert.throws(() => parseDuration("ten", 0), /"ten"/);
});

test("schema problems are reported as file:line:col, every one of them", () => {
  const text = "site: dc1\nworkers: 0\ndiscovery:\n  interval: soon\nbogus: 1\n";
  assert.throws(
    () => parseConfigText(text, "prov.yaml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const lines = e.message.split("\n");
      assert.ok(lines.some((l) => l.startsWith("prov.yaml:2:10: workers")), e.message);
      assert.ok(lines.some((l) => l.startsWith("prov.yaml:4:13: discovery.interval")), e.message);
      assert.ok(lines.some((l) => /bogus/.test(l)), e.message);
      return true;
    },
  );
});

test("YAML syntax errors name the position", () => {
  assert.throws(() => parseConfigText("site: [unclosed\n", "bad.yaml"), (e: unknown) => e instanceof ConfigError && /^bad\.yaml:\d+:\d+:/.test(e.message));
});

test("a missing file is a clear error", () => {
  assert.throws(() => loadConfigFile("/nonexistent/prov.yaml"), /\/nonexistent\/prov\.yaml.*ENOENT/);
});

test("defaults, relative paths and secrets from the environment", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-cfg-"));
  const f = join(dir, "prov.yaml");
  writeFileSync(f, "broker: nats://127.0.0.1:4333\npolicies: ./pol\nca:\n  dir: ./ca\ndiscovery:\n  interval: 2m\n");
  const s = resolveSettings(loadConfigFile(f), { CHORIA_PROVISIONER_TOKEN: "s3cret", CHORIA_PROVISIONER_ADMIN_TOKEN: "adm" });
  assert.deepEqual(s.brokers, ["nats://127.0.0.1:4333"]);
  assert.equal(s.policiesDir, join(dir, "pol"));
  assert.equal(s.ca.dir, join(dir, "ca"));
  assert.equal(s.ca.type, "builtin");
  assert.equal(s.pki, true);
  assert.equal(s.token, "s3cret");
  assert.equal(s.adminToken, "adm");
  assert.equal(s.discoveryIntervalMs, 120_000);
  assert.equal(s.queueMaxWaitMs, 240_000, "queued nodes expire after two discovery intervals, like the reference");
  assert.equal(s.adminListen, "127.0.0.1:0");
});

test("the shipped example production configuration is valid", () => {
  const s = resolveSettings(loadConfigFile(new URL("../../contrib/provisioner.yaml", import.meta.url).pathname), {});
  assert.equal(s.site, "ams1");
  assert.equal(s.brokers.length, 2);
  assert.equal(s.leaderElection, true);
});

test("HA tuning keys reach the settings in milliseconds", () => {
  const s = resolveSettings(parseConfigText("leader_election: true\nha:\n  api_prefix: choria.streams\n  election_ttl: 30s\n  stand_down: 500ms\n  claim_ttl: 2m\n  replicas: 3\n", "ha.yaml"), {});
  assert.deepEqual(s.ha, { apiPrefix: "choria.streams", electionTtlMs: 30_000, standDownMs: 500, claimTtlMs: 120_000, replicas: 3 });
  assert.deepEqual(resolveSettings({}, {}).ha, { apiPrefix: undefined, electionTtlMs: undefined, standDownMs: undefined, claimTtlMs: undefined, replicas: undefined });
  assert.throws(() => parseConfigText("ha:\n  replicas: 9\n", "ha.yaml"), /ha\.yaml:2:13: ha\.replicas/);
});

test("arrival and rollout: off when absent; homes, secrets and defaults resolved; rollout without arrival is refused", async () => {
  const { rolloutProblems } = await import("../../src/config/index.js");
  const off = resolveSettings({}, {});
  assert.equal(off.arrival, undefined);
  assert.equal(off.rollout.enabled, false, "no guarded rollout without arrival");
  assert.deepEqual(rolloutProblems(off), []);
  const s = resolveSettings({ arrival: { broker_password_env: "HOME_PW", homes: [{ broker: "nats://a:4222,nats://b:4222", broker_sets: ["eu"] }, { name: "us", broker: ["nats://us:4222"], broker_user: "watch" }] }, rollout: { max_lost: "25%", canary: 8 } }, { HOME_PW: "pw" });
  assert.equal(s.arrival!.deadlineMs, 120_000);
  assert.deepEqual(s.arrival!.homes.map((h) => [h.name, h.brokers, h.brokerSets, h.login.user, h.login.password]), [["nats://a:4222,nats://b:4222", ["nats://a:4222", "nats://b:4222"], ["eu"], undefined, "pw"], ["us", ["nats://us:4222"], undefined, "watch", "pw"]]);
  assert.deepEqual([s.rollout.enabled, s.rollout.canary, s.rollout.maxLost, s.rollout.minArrivals, s.rollout.onFailure, s.rollout.trustInitial], [true, 8, 0.25, 6, "revert", false]);
  assert.match(rolloutProblems(resolveSettings({ rollout: { canary: 5 } }, {})).join("\n"), /rollout needs arrival/);
  assert.match(rolloutProblems(resolveSettings({ arrival: {}, rollout: { canary: 5, min_arrivals: 6 } }, {})).join("\n"), /min_arrivals \(6\) is more than rollout.canary \(5\)/);
});

test("renewal: off when absent; defaults, rate and token resolved; what it needs is refused at the key's file:line:col", async () => {
  const { parseRate } = await import("../../src/config/index.js");
  assert.equal(resolveSettings({}, {}).renewal, undefined);
  const homes = { homes: [{ name: "h", broker: "nats://h:4222", tls: { cert: "c.pem", key: "k.pem" } }] };
  const s = resolveSettings({ arrival: homes, renewal: {} }, { CHORIA_PROVISIONER_TOKEN: "tok" });
  assert.deepEqual({ ...s.renewal!, ratePerMs: s.renewal!.ratePerMs * 60_000 }, { windowMs: 30 * 86_400_000, ratePerMs: 10, burst: 1, retryAfterMs: 3_600_000, timeoutMs: 10_000, intervalMs: 60_000, collective: "mcollective", caller: undefined, token: "tok" });
  assert.equal(resolveSettings({ arrival: homes, renewal: { token_env: "RENEW_TOKEN", rate: 120 } }, { RENEW_TOKEN: "other" }).renewal!.token, "other");
  assert.equal(resolveSettings({ arrival: homes, renewal: { enabled: false } }, {}).renewal, undefined, "enabled: false keeps the section and renews nothing");
  assert.equal(parseRate("100/h") * 3_600_000, 100);
  assert.equal(parseRate("2/s") * 1000, 2);
  assert.equal(parseRate(30) * 60_000, 30, "a number is per minute");

  const problems = (text: string): string[] => {
    try {
      parseConfigText(text, "prov.yaml");
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message.split("\n");
    }
  };
  assert.deepEqual(problems("site: a\nrenewal:\n  enabled: true\n  window: 30d\n"), ["prov.yaml:3:12: renewal needs arrival.homes: the home brokers where nodes are asked to go back to provisioning"]);
  assert.deepEqual(problems("renewal: {}\n"), ["prov.yaml:1:1: renewal needs arrival.homes: the home brokers where nodes are asked to go back to provisioning"]);
  assert.deepEqual(problems("arrival:\n  homes:\n    - broker: nats://h:4222\nrenewal:\n  rate: 0/m\n  window: soon\n"), [
    "prov.yaml:6:11: renewal.window: must be a duration such as 500ms, 10s, 5m, 1h, 30d, 1y or a number of milliseconds, got \"soon\"",
  ], "the schema's problems first");
  assert.deepEqual(problems("arrival:\n  homes:\n    - broker: nats://h:4222\nrenewal:\n  rate: 0/m\n  cert: c.pem\n"), [
    "prov.yaml:4:1: renewal signs its requests with a client certificate: set renewal.cert and renewal.key, or the home's tls cert and key (arrival.tls or arrival.homes[].tls) for nats://h:4222",
    "prov.yaml:5:9: renewal.rate must be more than 0",
    "prov.yaml:6:9: renewal.cert needs renewal.key",
  ]);
  assert.deepEqual(problems("features:\n  pki: false\nca:\n  type: cfssl\n  url: http://x\narrival:\n  tls: { cert: c, key: k }\n  homes: [{ broker: nats://h:4222 }]\nrenewal:\n  enabled: true\n"), [
    "prov.yaml:10:12: renewal renews certificates: it needs features.pki",
    "prov.yaml:10:12: renewal reads the certificate ledger: a cfssl CA keeps one only when ca.ledger is set",
  ]);
  assert.deepEqual(problems("renewal:\n  rate: 10/fortnight\n"), ["prov.yaml:2:9: renewal.rate: must be a rate such as 10/m, 100/h, 2/s or a number per minute, got \"10/fortnight\""]);
  // settings built in code get the same checks, without positions
  assert.throws(() => resolveSettings({ renewal: {} }, {}), /renewal needs arrival\.homes/);
});
