/**
 * More than one server answering as a node: cloned twins (a second simulated fleet with some of
 * the first's identities, their own keys and connection) and an impostor that answers for many
 * nodes without announcing any. No such node is configured, by either side; each is recorded
 * as a conflict naming the step, counted, listed in /status and held until an operator clears it.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { identityOf, startFleet, type Fleet } from "../../src/sim/index.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";

const N = 60;
let srv: LocalNatsServer;
let fleet: Fleet;
let twins: Fleet;
let impostor: Fleet;
let daemon: TestDaemon;
let twinIds: string[];
let impostorIds: string[];

before(async () => {
  srv = await startNatsServer();
  // no discovery of its own: the nodes come by their startup events, so the directed steps must see the second server
  daemon = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, discovery: { interval: "1h", timeout: "1500ms", quiet: "300ms", at_start: false }, admin: { listen: "127.0.0.1:0", token_env: "ADMIN_TOKEN" } }, {}, { ADMIN_TOKEN: "tok" });
  const ids = Array.from({ length: N }, (_, i) => identityOf(i));
  twinIds = ids.filter((_, i) => i % 10 === 3);
  impostorIds = ids.filter((_, i) => i % 10 >= 6);
  // the second servers first, so they are listening when the genuine nodes announce themselves;
  // several fleets share the broker, so none answers no-responders for the others' nodes
  impostor = await startFleet({ servers: srv.url, nodes: impostorIds.length, identities: impostorIds, seed: 7, restartDelayMs: 50, announce: false, noResponders: false });
  twins = await startFleet({ servers: srv.url, nodes: twinIds.length, identities: twinIds, seed: 6, restartDelayMs: 50, noResponders: false });
  fleet = await startFleet({ servers: srv.url, nodes: N, seed: 5, restartDelayMs: 50, noResponders: false });
});

after(async () => {
  await daemon?.stop(5000);
  for (const f of [fleet, twins, impostor]) await f?.stop();
  await srv?.stop();
});

test("twins and an impostor: no node with a second responder is configured; each is recorded as a conflict, counted, held and listed", async () => {
  const suspect = new Set([...twinIds, ...impostorIds]);
  const honest = fleet.identities.filter((id) => !suspect.has(id));
  await daemon.waitFor(
    (rs) => [...suspect].every((id) => rs.some((r) => r.identity === id && r.outcome === "conflict")) && honest.every((id) => rs.some((r) => r.identity === id && ["configure", "shutdown", "defer"].includes(r.outcome))),
    90_000,
    "conflict records for every suspect and the honest nodes configured",
  );
  for (const id of suspect) {
    const rs = daemon.records.filter((r) => r.identity === id);
    // a flow may end before the second server's reply reaches it: in error (a slow reply), or
    // deferred by the policy (nothing is sent to a deferred node). Never configured or shut down.
    assert.ok(rs.every((r) => ["conflict", "error", "defer"].includes(r.outcome)), `${id}: ${JSON.stringify(rs.map((r) => [r.outcome, r.reason]))}`);
    assert.match(rs.find((r) => r.outcome === "conflict")!.reason, /conflicting replies to (rpcutil#inventory|choria_provision#\w+)/);
  }
  const configured = (f: Fleet) => f.report().nodes.filter((n) => n.configureCount > 0).map((n) => n.identity);
  assert.deepEqual(configured(twins), [], "a twin got a configuration");
  assert.deepEqual(configured(impostor), [], "the impostor got a configuration");
  assert.deepEqual(configured(fleet).filter((id) => suspect.has(id)), [], "a node with a twin got a configuration");

  const metrics = await daemon.metrics.registry.metrics();
  const counted = [...metrics.matchAll(/^choria_provisioner_conflicts_total\{[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  assert.ok(counted >= suspect.size, `conflicts_total ${counted} < ${suspect.size}`);

  const status = (await (await fetch(`${daemon.admin.url}/status`)).json()) as { conflicts: { held: number; nodes: Array<{ identity: string; step: string }> } };
  assert.equal(status.conflicts.held, suspect.size);
  assert.deepEqual(new Set(status.conflicts.nodes.map((n) => n.identity)), suspect);

  // held, not retried in a loop: discovery keeps seeing the twins, yet no new record appears
  const before = daemon.records.length;
  await daemon.provisioner.discoverNow();
  await daemon.provisioner.discoverNow();
  assert.equal(daemon.records.filter((r, i) => i >= before && suspect.has(r.identity)).length, 0, "a held node was provisioned again");
});

test("the operator clears a node once its twin is gone, and it is provisioned", async () => {
  await twins.stop();
  const id = twinIds[0];
  const clear = (headers: Record<string, string>) => fetch(`${daemon.admin.url}/nodes/clear`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ identities: [id] }) });
  const listed = (await (await fetch(`${daemon.admin.url}/nodes?state=conflict`)).json()) as unknown;
  assert.ok(JSON.stringify(listed).includes(id), `nodes list --state conflict shows ${id}: ${JSON.stringify(listed).slice(0, 300)}`);
  assert.equal((await clear({})).status, 401);
  assert.equal((await clear({ authorization: "Bearer tok" })).status, 200);
  await daemon.waitFor((rs) => rs.some((r) => r.identity === id && r.outcome === "configure"), 30_000, `${id} configured after the clear`);
  const status = (await (await fetch(`${daemon.admin.url}/status`)).json()) as { conflicts: { held: number } };
  assert.equal(status.conflicts.held, twinIds.length + impostorIds.length - 1);
});

test("two servers that only answer discovery as one identity are recorded as a conflict at discovery#ping", async () => {
  const id = "lone.example.net";
  const pair = [
    await startFleet({ servers: srv.url, nodes: 1, identities: [id], seed: 8, announce: false, noResponders: false }),
    await startFleet({ servers: srv.url, nodes: 1, identities: [id], seed: 9, announce: false, noResponders: false }),
  ];
  try {
    await daemon.provisioner.discoverNow();
    const rs = await daemon.waitFor((all) => all.some((r) => r.identity === id), 20_000, `a record for ${id}`);
    const mine = rs.filter((r) => r.identity === id);
    assert.deepEqual(mine.map((r) => [r.outcome, r.reason]), [["conflict", "conflicting replies to discovery#ping: two discovery replies from this identity"]]);
    assert.equal(pair[0].report().nodes[0].configureCount + pair[1].report().nodes[0].configureCount, 0);
  } finally {
    for (const f of pair) await f.stop();
  }
});
