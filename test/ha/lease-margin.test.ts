/**
 * The lease margin docs/ha.md states: with a 10 s TTL, a broker restart of the documented
 * margin (0.75 x TTL - 3 s) at the worst moment, just before the leader's renewal is due, keeps
 * leadership, with no moment without a leader. The electors use the daemon's own connection
 * settings (connectNats: reconnect every 1 s plus up to 0.5 s of jitter), over a real nats-server
 * with JetStream whose store survives the restart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Elector, leaseMarginMs } from "../../src/ha/index.js";
import { closeNats, connectNats } from "../../src/transport/index.js";
import { startTestNats } from "../helpers/processes.js";
import { Waiters } from "../helpers/waiters.js";
import { LeaderMonitor, makeBucket } from "./helpers.js";

const TTL = 10_000;

test("a broker restart within the lease margin, just before a renewal, keeps leadership", { timeout: 120_000 }, async (t) => {
  const srv = await startTestNats(t, { jetstream: true });
  await makeBucket(srv.url, "ELECTION_MARGIN", TTL);
  const mon = new LeaderMonitor();
  const es: Elector[] = [];
  for (const name of ["a", "b"]) {
    const nc = await connectNats({ servers: srv.url, name });
    t.after(() => closeNats(nc));
    const e = await Elector.open({ nc, bucket: "ELECTION_MARGIN", name, splayMs: 0 });
    t.after(() => e.stop());
    mon.watch(name, e);
    es.push(e);
  }
  es[0].start();
  await mon.waitFor((m) => m.leaders.has("a"), 10_000, "a leads");
  es[1].start();
  // a's writes as b sees them (its watch, its campaigns), and any change of leadership
  const writes: Array<{ revision: number; at: number }> = [];
  const changed = new Waiters();
  es[1].on("observed", (o) => {
    if (o.revision > (writes.at(-1)?.revision ?? 0)) writes.push({ revision: o.revision, at: performance.now() });
    changed.notify();
  });
  for (const e of es) e.on("change", () => changed.notify());
  const renewals = (n: number, what: string) => changed.until(() => writes.length >= n || mon.events.length > 1, () => undefined, 3 * TTL, () => new Error(`no ${what}; events ${JSON.stringify(mon.events)}`));
  await renewals(2, "renewals by a");
  // the restart goes just before a's next renewal is due: its last write is as old as it gets
  const outage = leaseMarginMs(TTL);
  await new Promise((r) => setTimeout(r, es[0].renewMs - 100));
  const down = performance.now();
  await srv.restart(outage);
  const seen = writes.length;
  await renewals(seen + 2, "renewals by a after the restart");
  console.log(`broker down ${outage} ms just before a renewal (TTL ${TTL} ms, renewal every ${es[0].renewMs} ms): leadership changes ${JSON.stringify(mon.events.slice(1).map((e) => [e.who, e.leader, Math.round(e.at - down), e.reason]))}`);
  assert.deepEqual(mon.events.slice(1), [], "no leadership change");
  assert.equal(es[0].isLeader, true);
  assert.equal(es[1].isLeader, false);
  // a renews with the revision of its last write: had the key expired, or had b taken it, a
  // would have stood down; it is still a's, with two new revisions since the broker's return
  assert.ok(writes.length >= seen + 2);
});
