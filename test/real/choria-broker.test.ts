/**
 * A real Choria Broker as the provisioning broker: TLS, the provisioning account
 * (plugin.choria.network.provisioning.client_password), servers admitted by a provisioning JWT
 * signed with the key in signer_cert, and the daemon connecting as the `provisioner` user over
 * verified mutual TLS. Two daemons share leader election on the broker's Choria Streams (API
 * prefix choria.streams, bucket CHORIA_LEADER_ELECTION, key `provisioner`); the leader is
 * stopped and the standby takes over and provisions.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { EventWatch, REAL_SKIP, RealLab, homePolicy, pollUntil } from "../helpers/real-choria.js";

let lab: RealLab;
let home: EventWatch;
const daemons: TestDaemon[] = [];

before(async () => {
  if (REAL_SKIP) return;
  lab = await RealLab.start({ broker: "choria" });
  home = await EventWatch.open(await lab.homeConnection());
  lab.onStop(() => home.close());
  lab.onStop(async () => {
    await Promise.all(daemons.map((d) => d.stop(3000)));
  });
});

after(async () => {
  await lab?.stop();
});

async function daemon(identity: string): Promise<TestDaemon> {
  const pol = lab.writePolicy("lab", homePolicy(lab));
  const d = await startTestDaemon(
    lab.provisioning.url,
    { ...(await lab.daemonBroker()), ...pol, identity, ca: { dir: lab.caDir }, leader_election: true, ha: { api_prefix: "choria.streams", election_ttl: "3s" } },
    {},
    lab.daemonEnv(),
  );
  daemons.push(d);
  return d;
}

function leaderOf(ds: TestDaemon[]): TestDaemon | undefined {
  return ds.find((d) => d.provisioner.role === "leader");
}

test("through a real Choria Broker: the provisioner user over mTLS provisions real servers; the standby takes over when the leader stops", { skip: REAL_SKIP }, async () => {
  const a = await daemon("provisioner-a.lab");
  const b = await daemon("provisioner-b.lab");
  await pollUntil(() => leaderOf([a, b]) !== undefined, 20_000, "a leader");
  const first = leaderOf([a, b])!;
  const standby = first === a ? b : a;
  assert.equal(standby.provisioner.role, "standby");

  const batch1 = ["cb1.real.example.net", "cb2.real.example.net", "cb3.real.example.net"];
  for (const id of batch1) lab.startServer(id);
  await home.until((w) => batch1.every((id) => w.identities("startup", "server").has(id)), 60_000, "the first batch at home");
  assert.ok(batch1.every((id) => first.records.some((r) => r.identity === id && r.outcome === "configure")), "the leader configured the first batch");
  assert.equal(standby.records.length, 0, "the standby did nothing");

  await first.stop(3000);
  // the provisioning account may only create and update the key: the standby wins once the
  // resigned leader's delete marker expires with the bucket's TTL (10 s in the lab)
  await pollUntil(() => standby.provisioner.role === "leader", 40_000, "the standby to take over");

  const batch2 = ["cb4.real.example.net", "cb5.real.example.net"];
  for (const id of batch2) lab.startServer(id);
  await home.until((w) => batch2.every((id) => w.identities("startup", "server").has(id)), 60_000, "the second batch at home");
  assert.ok(batch2.every((id) => standby.records.some((r) => r.identity === id && r.outcome === "configure")), "the new leader configured the second batch");
});
