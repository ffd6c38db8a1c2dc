/** Every fault, on nodes the test identifies up front from the seed with faultsOf(). */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "nats";
import { connectNats, RpcClient, RpcNoRespondersError, RpcTimeoutError, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, FAULT_NAMES, parseFaultSpec, type Fleet } from "../../src/sim/index.js";
import { LifecycleLog, configData, csrInfo, ev, signCsr } from "./helpers.js";
import { makeTestCa, type TestCa } from "../helpers/ca.js";

let srv: LocalNatsServer;
let nc: NatsConnection;
let fleet: Fleet;
let client: RpcClient;
let ca: TestCa;
let log: LifecycleLog;

type Data = Record<string, any>;

function only(name: string): string {
  const id = fleet.identities.find((i) => {
    const f = fleet.faultsOf(i);
    return f.size === 1 && f.has(name);
  });
  assert.ok(id, `seed gives a node with only ${name}`);
  return id!;
}

before(async () => {
  srv = await startNatsServer();
  nc = await connectNats({ servers: srv.url });
  log = new LifecycleLog(nc);
  await nc.flush();
  [fleet, ca] = await Promise.all([
    startFleet({
      servers: srv.url,
      nodes: 80,
      seed: 3,
      restartDelayMs: 30,
      faults: parseFaultSpec("latency=150-200,latency_fraction=0.12,drop=0.12,die_after_inventory=0.1,die_after_gencsr=0.1,bad_csr=0.1,wrong_cn_csr=0.1,come_back_unprovisioned=0.12,rejected_at_home=0.12,lose_first_restart=0.12"),
    }),
    makeTestCa(),
  ]);
  client = new RpcClient({ nc, identity: "provisioner.example.net" });
  client.start();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await nc?.close();
  await srv?.stop();
});

describe("sim: faults", () => {
  it("assignment is deterministic per seed and identity", async () => {
    const all = fleet.identities.map((i) => [...fleet.faultsOf(i)].sort().join(","));
    for (const name of FAULT_NAMES) assert.ok(all.some((f) => f.split(",").includes(name)), `some node has ${name}`);
    assert.ok(all.some((f) => f === ""), "most nodes are healthy");
    const srv2 = fleet.report().nodes.map((n) => n.faults.sort().join(","));
    assert.deepEqual(srv2, all);
  });

  it("latency delays replies by the configured range", async () => {
    const slow = only("latency");
    const healthy = fleet.identities.find((i) => fleet.faultsOf(i).size === 0)!;
    let t = performance.now();
    await client.call(slow, "rpcutil", "ping");
    const ms = performance.now() - t;
    assert.ok(ms >= 150, `latency node answered in ${ms}ms`);
    t = performance.now();
    await client.call(healthy, "rpcutil", "ping");
    assert.ok(performance.now() - t < 150);
  });

  it("drop: no reply, counted as a fault drop", async () => {
    const id = only("drop");
    const before = fleet.report().totals.droppedByFault;
    const violations = fleet.report().totals.violations;
    const counted = fleet.waitFor((r) => r.totals.droppedByFault > before, 3000);
    await assert.rejects(client.call(id, "rpcutil", "inventory", {}, { timeoutMs: 400 }), RpcTimeoutError);
    await counted;
    assert.equal(fleet.report().totals.violations, violations, "the provisioner did nothing wrong");
  });

  it("die_after_inventory: answers inventory, then nothing", async () => {
    const id = only("die_after_inventory");
    const died = new Promise((r) => fleet.events.on("died", (who) => who === id && r(who)));
    assert.equal((await client.call(id, "rpcutil", "inventory")).statuscode, 0);
    await died;
    // a dead server has no subscription: the broker answers for it
    await assert.rejects(client.call(id, "rpcutil", "ping", {}, { timeoutMs: 200 }), RpcNoRespondersError);
    assert.ok(!(await client.discover({ timeoutMs: 1500 })).includes(id));
  });

  it("die_after_gencsr: answers gencsr, then nothing", async () => {
    const id = only("die_after_gencsr");
    assert.equal((await client.call(id, "rpcutil", "inventory")).statuscode, 0);
    const r = await client.call<Data>(id, "choria_provision", "gencsr", {});
    assert.equal(r.statuscode, 0);
    await fleet.waitFor((rep) => rep.nodes.find((n) => n.identity === id)!.mode === "dead", 2000);
    await assert.rejects(client.call(id, "choria_provision", "configure", configData(id), { timeoutMs: 200 }), RpcNoRespondersError);
  });

  it("bad_csr: gencsr returns something that is not a PEM CSR", async () => {
    const id = only("bad_csr");
    const r = await client.call<Data>(id, "choria_provision", "gencsr", {});
    assert.equal(r.statuscode, 0);
    assert.doesNotMatch(r.data.csr, /-----BEGIN CERTIFICATE REQUEST-----/);
  });

  it("wrong_cn_csr: the CSR names another identity", async () => {
    const id = only("wrong_cn_csr");
    const r = await client.call<Data>(id, "choria_provision", "gencsr", { cn: id });
    const cn = /CN=([^,]+)$/.exec(csrInfo(r.data.csr).subject)![1];
    assert.notEqual(cn, id);
    assert.ok(fleet.identities.includes(cn), `${cn} is another fleet member`);
    assert.equal(await csrInfo(r.data.csr).verify(), true, "still a valid CSR");
  });

  it("come_back_unprovisioned: after the first restart it is back in provisioning mode; the second time it leaves", async () => {
    const id = only("come_back_unprovisioned");
    const flow = async (): Promise<void> => {
      const r = await client.call<Data>(id, "choria_provision", "gencsr", {});
      const cert = await signCsr(ca, r.data.csr);
      assert.equal((await client.call(id, "choria_provision", "configure", configData(id, { certificate: cert, ca: ca.pem, home: srv.url }))).statuscode, 0);
      assert.equal((await client.call(id, "choria_provision", "restart", { splay: 1 })).statuscode, 0);
    };
    await flow();
    await log.next(ev("startup", id), 3000, 2);
    assert.equal(fleet.report().totals.cameBackUnprovisioned, 1);
    assert.equal((await client.call(id, "rpcutil", "ping")).statuscode, 0);
    const left = new Promise((r) => fleet.events.on("restarted", (who) => who === id && r(who)));
    await flow();
    await left;
    await log.next(ev("startup", id, "server"));
    const n = fleet.report().nodes.find((x) => x.identity === id)!;
    assert.deepEqual([n.configureCount, n.restartCount, n.provisioned], [2, 2, true]);
    assert.ok(fleet.report().totals.configuredMoreThanOnce >= 1);
  });

  it("rejected_at_home: restarts as a server with good brokers but never arrives there", async () => {
    const id = only("rejected_at_home");
    const r = await client.call<Data>(id, "choria_provision", "gencsr", {});
    const cert = await signCsr(ca, r.data.csr);
    assert.equal((await client.call(id, "choria_provision", "configure", configData(id, { certificate: cert, ca: ca.pem, home: srv.url }))).statuscode, 0);
    const stranded = new Promise((res) => fleet.events.on("stranded", (who) => who === id && res(who)));
    assert.equal((await client.call(id, "choria_provision", "restart", { splay: 1 })).statuscode, 0);
    await stranded;
    // the broker it was given is the one this test listens on, and it is up: a healthy node's
    // startup event would be here within a round trip (the configure+restart test shows one)
    await nc.flush();
    await assert.rejects(log.next(ev("startup", id, "server"), 1000), /no lifecycle event matched/);
    const n = fleet.report().nodes.find((x) => x.identity === id)!;
    assert.deepEqual([n.provisioned, n.home], [true, undefined]);
  });

  it("lose_first_restart: the first restart gets no reply and changes nothing; the next one restarts it", async () => {
    const id = only("lose_first_restart");
    const r = await client.call<Data>(id, "choria_provision", "gencsr", {});
    const cert = await signCsr(ca, r.data.csr);
    assert.equal((await client.call(id, "choria_provision", "configure", configData(id, { certificate: cert, ca: ca.pem, home: srv.url }))).statuscode, 0);
    const dropped = fleet.report().totals.droppedByFault;
    await assert.rejects(client.call(id, "choria_provision", "restart", { splay: 1 }, { timeoutMs: 300 }), RpcTimeoutError);
    assert.equal(fleet.report().totals.droppedByFault, dropped + 1);
    assert.equal(fleet.report().nodes.find((x) => x.identity === id)!.mode, "provisioning");
    assert.equal((await client.call(id, "choria_provision", "restart", { splay: 1 })).statuscode, 0);
    await log.next(ev("startup", id, "server"), 5000);
  });

  it("parseFaultSpec rejects nonsense", () => {
    assert.throws(() => parseFaultSpec("drop=2"), /fraction/);
    assert.throws(() => parseFaultSpec("explode=0.1"), /unknown fault/);
    assert.throws(() => parseFaultSpec("latency=200-100"), /latency/);
    assert.deepEqual(parseFaultSpec("latency=5,drop=0.5,drop-probability=0.25"), { latencyMs: [5, 5], drop: 0.5, dropProbability: 0.25 });
  });

  it("no internal errors", () => assert.equal(fleet.report().totals.violationsByKind.simulator_error, undefined));
});
