/**
 * The daemon's own arrival tracking on real go-choria servers: each server it provisions
 * restarts (re-executing itself) into the home its policy chose. Those sent to the lab's mTLS
 * home publish their `startup` event (component `server`) there and are recorded `arrived`; the
 * one the policy sends to a broker nobody listens on never connects and is recorded `lost` at the
 * deadline. The daemon watches the home with a client certificate from our CA, as an operator's
 * would, and the unreachable broker set on its own brokers.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { freePort } from "../../src/transport/index.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, RealLab, homePolicy } from "../helpers/real-choria.js";
import { watchArrivals, type ArrivalWatch } from "../arrival/helpers.js";

const good = ["arr1", "arr2", "arr3", "arr4"].map((n) => `${n}.real.example.net`);
const strayed = "stray.real.example.net";
const DEADLINE_MS = 30_000;
let lab: RealLab;
let daemon: TestDaemon;
let arrivals: ArrivalWatch;
let nowhere: string;

before(async () => {
  if (REAL_SKIP) return;
  lab = await RealLab.start();
  // a port nothing listens on: the stray server's home
  nowhere = `nats://127.0.0.1:${await freePort()}`;
  const rules = `  - name: stray
    priority: 100
    conditions:
      all:
        - { fact: identity, operator: equal, value: ${strayed} }
    then:
      brokerSet: nowhere
`;
  const pol = lab.writePolicy("arrival", homePolicy(lab, { brokerSets: { nowhere: [nowhere] }, rules }));
  const tls = { ca: lab.caFile, cert: lab.client.cert, key: lab.client.key };
  daemon = await lab.startDaemon({
    ...pol,
    arrival: { deadline: DEADLINE_MS, tls, homes: [{ name: "lab-home", broker: lab.home.url, broker_sets: ["home"], tls }] },
    rollout: { trust_initial: true },
  });
  arrivals = watchArrivals(daemon);
});

after(async () => {
  await lab?.stop();
});

test("real servers sent home are recorded arrived; one sent to an unreachable broker is recorded lost", { skip: REAL_SKIP }, async () => {
  for (const id of [...good, strayed]) lab.startServer(id);
  await arrivals.until((w) => good.every((id) => w.latest().get(id)?.result === "arrived") && w.latest().get(strayed)?.result === "lost", 120_000 + DEADLINE_MS, "four arrived and one lost");

  const configured = new Map(daemon.records.filter((r) => r.outcome === "configure").map((r) => [r.identity, r]));
  for (const id of good) {
    const v = arrivals.latest().get(id)!;
    assert.equal(v.seenAt, "lab-home");
    assert.equal(v.decision.time, configured.get(id)!.time, `${id}: follows its configure decision`);
    // component `server` comes only from the re-executed process (before, it was provision_mode_server)
    assert.ok(v.afterMs! > 0 && v.afterMs! < DEADLINE_MS, `${id} arrived ${v.afterMs} ms after its restart was accepted`);
  }
  const lost = arrivals.latest().get(strayed)!;
  assert.equal(lost.decision.brokerSet, "nowhere");
  assert.deepEqual(lost.brokers, [nowhere]);
  assert.equal(arrivals.count("lost"), 1, "exactly one lost");
  assert.equal(arrivals.count("arrived"), good.length, "each good server arrived once");

  const status = daemon.arrival!.status();
  assert.deepEqual(status.lost.map((l) => l.identity), [strayed], "/status lists the lost node");
  assert.equal(status.homes.find((h) => h.name === "lab-home")?.connected, true);
  const metrics = await (await fetch(`${daemon.admin.url}/metrics`)).text();
  assert.match(metrics, /^choria_provisioner_arrivals_total\{site="default",result="lost",policy_version="1",broker_set="nowhere"\} 1$/m);
  assert.match(metrics, /^choria_provisioner_arrivals_total\{site="default",result="arrived",policy_version="1",broker_set="home"\} 4$/m);
  assert.match(metrics, /^choria_provisioner_lost_nodes\{site="default"\} 1$/m);
});
