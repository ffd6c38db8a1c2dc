/**
 * The daemon wiring, in process: two instances with leader_election; /status and the role
 * gauge show leader and standby; a clean stop of the leader hands over within the stand-down
 * wait; without JetStream the daemon refuses to start with a clear message.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ELECTION_BUCKET } from "../../src/ha/index.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/local-server.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBucket, roleOf } from "./helpers.js";

const TTL = 2000;
let srv: LocalNatsServer;
const daemons: TestDaemon[] = [];

before(async () => {
  srv = await startNatsServer({ jetstream: true });
  await makeBucket(srv.url, ELECTION_BUCKET, TTL);
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop(2000)));
  await srv.stop();
});


async function gauge(d: TestDaemon): Promise<Record<string, number>> {
  const text = await d.metrics.registry.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^choria_provisioner_role\{[^}]*role="([^"]+)"[^}]*\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

test("leader and standby: status, role gauge, clean hand-over", { timeout: 30_000 }, async () => {
  const a = await startTestDaemon(srv.url, { identity: "prov-a", leader_election: true, features: { pki: false } });
  daemons.push(a);
  await roleOf(a, "leader", 8000);
  const b = await startTestDaemon(srv.url, { identity: "prov-b", leader_election: true, features: { pki: false } });
  daemons.push(b);
  assert.equal(b.provisioner.status().role, "standby");
  assert.equal(b.provisioner.status().ready, false, "a standby is not ready: it takes no work");
  assert.equal(b.provisioner.offer("x.example.net", "event"), "standby");
  assert.equal(a.provisioner.status().role, "leader");
  assert.deepEqual(await gauge(a), { standalone: 0, standby: 0, leader: 1 });
  assert.deepEqual(await gauge(b), { standalone: 0, standby: 1 });
  const status = (await (await fetch(`${a.admin.url}/status`)).json()) as { role: string };
  assert.equal(status.role, "leader");

  const t0 = performance.now();
  const took = roleOf(b, "leader", 5000);
  await a.stop(2000);
  const stopMs = performance.now() - t0;
  const failover = (await took) - t0;
  console.log(`daemon clean hand-over: ${failover.toFixed(0)} ms, of which stopping the leader (drain, running discovery) ${stopMs.toFixed(0)} ms (TTL ${TTL} ms)`);
  // the leader resigns only after its drain; then the standby waits the stand-down (1 s) and nothing else
  assert.ok(failover <= stopMs + 1000 + 2500, `hand-over ${failover}ms`);
  assert.deepEqual(await gauge(b), { standalone: 0, standby: 0, leader: 1 });
});

test("without JetStream the daemon refuses to start in HA mode", { timeout: 20_000 }, async () => {
  const plain = await startNatsServer();
  try {
    await assert.rejects(startTestDaemon(plain.url, { identity: "prov-c", active_active: true, features: { pki: false } }), /active-active mode \(needs JetStream on the broker\)/);
  } finally {
    await plain.stop();
  }
});
