/**
 * The outcomes other than configure, on real go-choria servers: defer (the node stays in
 * provisioning mode, untouched), shutdown (the process exits 0), and an upgrade that the server
 * refuses because its provisioning JWT does not allow upgrades.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, RealLab, TOKEN, homePolicy } from "../helpers/real-choria.js";

let lab: RealLab;
let daemon: TestDaemon;

const RULES = `
  - name: hold-defer
    priority: 900
    stop: true
    conditions:
      all:
        - { fact: identity, operator: glob, value: "defer*" }
    then:
      outcome: defer
      reason: "{{ identity }} waits for its rack"
      retryAfter: 2
  - name: retire
    priority: 910
    stop: true
    conditions:
      all:
        - { fact: identity, operator: glob, value: "shutdown*" }
    then:
      outcome: shutdown
      reason: "{{ identity }} is decommissioned"
  - name: upgrade-first
    priority: 920
    stop: true
    conditions:
      all:
        - { fact: identity, operator: glob, value: "upgrade*" }
    then:
      outcome: upgrade
      upgrade:
        version: 0.99.0
        repository: http://127.0.0.1:1/choria
      reason: "upgrade before provisioning"
`;

before(async () => {
  if (REAL_SKIP) return;
  lab = await RealLab.start();
  const pol = lab.writePolicy("lab", homePolicy(lab, { rules: RULES }));
  daemon = await startTestDaemon(lab.provisioning.url, { ...(await lab.daemonBroker()), ...pol, ca: { dir: lab.caDir } }, {}, { CHORIA_PROVISIONER_TOKEN: TOKEN });
  lab.onStop(() => daemon.stop(5000));
});

after(async () => {
  await lab?.stop();
});

test("defer leaves a real server in provisioning mode, untouched", { skip: REAL_SKIP }, async () => {
  const s = lab.startServer("defer1.real.example.net");
  const before = readFileSync(join(s.dir, "server.conf"), "utf8");
  const [rec] = (await daemon.waitFor((r) => r.some((x) => x.identity === s.identity), 30_000, "a record for the deferred node")).filter((x) => x.identity === s.identity);
  assert.equal(rec!.outcome, "defer");
  assert.equal(rec!.reason, "defer1.real.example.net waits for its rack");
  assert.equal(readFileSync(join(s.dir, "server.conf"), "utf8"), before, "its configuration is untouched");
  assert.equal(s.exitCode(), undefined, "it is still running");
  // still answering on the provisioning broker: decided again when the rule's retryAfter ends
  const n = daemon.records.length;
  await daemon.waitFor((r) => r.slice(n).some((x) => x.identity === s.identity && x.outcome === "defer"), 30_000, "the deferred node decided again after its retryAfter");
});

test("shutdown makes a real server exit 0", { skip: REAL_SKIP }, async () => {
  const s = lab.startServer("shutdown1.real.example.net");
  const exit = await s.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const rec = daemon.records.find((x) => x.identity === s.identity);
  assert.equal(rec?.outcome, "shutdown");
});

test("a real server whose JWT does not allow upgrades is not asked to upgrade (as in the reference); without brokers it is deferred", { skip: REAL_SKIP }, async () => {
  const s = lab.startServer("upgrade1.real.example.net");
  const before = readFileSync(join(s.dir, "server.conf"), "utf8");
  const recs = await daemon.waitFor((r) => r.some((x) => x.identity === s.identity), 30_000, "a record for the node the policy upgrades");
  const rec = recs.find((x) => x.identity === s.identity)!;
  assert.equal(rec.outcome, "defer");
  assert.equal(rec.durations.release_update, undefined, "release_update was not sent");
  assert.equal(readFileSync(join(s.dir, "server.conf"), "utf8"), before);
  assert.equal(s.exitCode(), undefined);
});

test("an upgrade a real server fails (its repository is unreachable) is recorded with the server's reason, and the node is not configured", { skip: REAL_SKIP }, async () => {
  const jwt = await lab.makeJwt(join(lab.root, "upgradable.jwt"), ["--upgrade"]);
  const s = lab.startServer("upgrade2.real.example.net", { jwt });
  const before = readFileSync(join(s.dir, "server.conf"), "utf8");
  const recs = await daemon.waitFor((r) => r.some((x) => x.identity === s.identity), 60_000, "a record for the node asked to upgrade");
  const rec = recs.find((x) => x.identity === s.identity)!;
  assert.notEqual(rec.outcome, "configure");
  assert.ok(rec.durations.release_update !== undefined || /release_update/.test(JSON.stringify(rec)), "release_update was sent");
  assert.match(JSON.stringify(rec), /Update to version 0\.99\.0 failed/);
  assert.equal(readFileSync(join(s.dir, "server.conf"), "utf8"), before);
  assert.equal(s.exitCode(), undefined);
});
