/**
 * Renewal's logic on a simulated clock: the token bucket, the spreading of a fleet's renewals,
 * and what each answer of a node becomes (metrics, audit, when it is asked again). The home
 * requests and the ledger are stand-ins here; renewal-sim.test.ts and test/real/renewal.test.ts
 * run them for real.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { Renewals, TokenBucket, type HomeCallResult, type RenewalDeps } from "../../src/arrival/index.js";
import type { RenewalSettings } from "../../src/config/index.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import type { DecisionRecord, DueCertificate, RenewalQuery, RenewRecord } from "../../src/types/index.js";

const DAY = 86_400_000;
const MIN = 60_000;

test("token bucket: a burst, then one token per 1/rate; a clock going back gives nothing", () => {
  const b = new TokenBucket(10 / MIN, 3, 0);
  assert.equal(b.available(0), 3);
  assert.ok(b.take(0) && b.take(0) && b.take(0));
  assert.equal(b.take(0), false);
  assert.equal(b.waitMs(0), 6000, "10 a minute: the next in 6 s");
  assert.equal(b.take(5999), false);
  assert.equal(b.take(6000), true);
  assert.equal(b.available(10 * MIN), 3, "saved up to the burst only");
  assert.equal(b.available(5 * MIN), 3, "time going back neither adds nor takes");
  assert.throws(() => new TokenBucket(0, 1, 0), /rate/);
  assert.throws(() => new TokenBucket(1, 0, 0), /burst/);
});

interface Harness {
  r: Renewals;
  source: { replacedRead: number };
  clock: { now: number };
  audit: RenewRecord[];
  calls: Array<{ identity: string; at: number; data: Record<string, unknown> }>;
  certs: DueCertificate[];
  metrics: ReturnType<typeof createMetrics>;
  logs: string[];
  active: { on: boolean };
  /** runs passes every `stepMs` of simulated time up to `untilMs`, letting calls settle between */
  run(untilMs: number, stepMs: number): Promise<void>;
}

const settings = (o: Partial<RenewalSettings> = {}): RenewalSettings => ({ windowMs: 30 * DAY, ratePerMs: 10 / MIN, burst: 5, retryAfterMs: 60 * MIN, timeoutMs: 1000, intervalMs: MIN, collective: "mcollective", token: "t0k3n-never-logged", ...o });

function harness(s: RenewalSettings, answer: (identity: string) => HomeCallResult | Promise<HomeCallResult>, nodes = 1000, ha: Pick<RenewalDeps, "claim" | "release"> = {}): Harness {
  const clock = { now: 1_000_000 };
  const certs: DueCertificate[] = Array.from({ length: nodes }, (_, i) => ({ identity: `n${i}.example.net`, serial: `s${i}`, fingerprint: "f", notAfter: clock.now + 20 * DAY + i * 1000, issuedAt: clock.now - 345 * DAY }));
  const audit: RenewRecord[] = [];
  const calls: Harness["calls"] = [];
  const logs: string[] = [];
  const metrics = createMetrics("t", { defaultMetrics: false });
  const active = { on: true };
  // the ledger's query over the stand-in certificates: latest per identity, in the window, issued before it
  const source = {
    /** what the ledger pays: replaced certificates in the part of the window it reads, each a probe */
    replacedRead: 0,
    renewalsDue(q: RenewalQuery) {
      const from = Math.max(q.now, q.from ?? 0);
      const inRange = (c: DueCertificate) => c.notAfter >= from && c.notAfter < q.now + q.windowMs;
      const latest = new Map<string, DueCertificate>();
      for (const c of certs) if ((latest.get(c.identity)?.issuedAt ?? -Infinity) < c.issuedAt) latest.set(c.identity, c);
      const due = [...latest.values()].filter((c) => inRange(c) && c.notAfter - c.issuedAt > q.windowMs).sort((a, b) => a.notAfter - b.notAfter).slice(0, q.limit);
      const upTo = due.length === q.limit ? due.at(-1)!.notAfter : Infinity;
      this.replacedRead += certs.filter((c) => inRange(c) && c.notAfter <= upTo && latest.get(c.identity) !== c).length;
      return due;
    },
  };
  const log = pino({ level: "debug" }, { write: (l: string) => void logs.push(l) });
  const r = new Renewals(s, {
    site: "t",
    metrics,
    log,
    audit: (x) => audit.push(x),
    source,
    call: async (identity, _agent, _action, data) => {
      calls.push({ identity, at: clock.now, data });
      return answer(identity);
    },
    canRun: () => active.on,
    now: () => clock.now,
    ...ha,
  });
  return {
    r,
    source,
    clock,
    audit,
    calls,
    certs,
    metrics,
    logs,
    active,
    async run(untilMs, stepMs) {
      const end = clock.now + untilMs;
      while (clock.now < end) {
        await r.pass();
        await new Promise((res) => setImmediate(res));
        clock.now += stepMs;
      }
    },
  };
}

const accepted = (): HomeCallResult => ({ ok: true, home: "home", reply: { statuscode: 0, statusmsg: "OK", data: { message: "Restarting after 5s" } } as never });

async function counter(h: Harness, result: string, reason = ""): Promise<number> {
  const m = (await h.metrics.registry.getSingleMetric("choria_provisioner_renewals_total")!.get()).values;
  return m.find((v) => v.labels.result === result && v.labels.reason === reason)?.value ?? -1;
}

test("a fleet provisioned in one day is not renewed in one minute: at most burst + rate x time, soonest expiry first", async () => {
  const h = harness(settings(), accepted);
  await h.run(60 * MIN, 1000);
  // 10 a minute and a burst of 5: 5 at once, then one every 6 s
  assert.ok(h.calls.length <= 5 + 10 * 60 + 1, `${h.calls.length} asked in an hour`);
  assert.ok(h.calls.length >= 5 + 10 * 60 - 1, `${h.calls.length} asked in an hour: the bucket's tokens were used`);
  for (let i = 0; i < h.calls.length; i++) for (let j = i; j < h.calls.length; j += 37) assert.ok(j - i + 1 <= 5 + (10 * (h.calls[j]!.at - h.calls[i]!.at)) / MIN + 1e-9, `calls ${i}..${j}: more than the bucket allows`);
  assert.deepEqual(h.calls.slice(0, 5).map((c) => c.identity), ["n0.example.net", "n1.example.net", "n2.example.net", "n3.example.net", "n4.example.net"], "soonest expiry first");
  assert.equal(new Set(h.calls.map((c) => c.identity)).size, h.calls.length, "no node asked twice within retry_after");
  assert.equal(await counter(h, "requested"), h.calls.length);
  assert.equal(h.r.status().requested, h.calls.length);
  // the token goes to the node and nowhere else
  assert.deepEqual(h.calls[0]!.data, { token: "t0k3n-never-logged" });
  assert.ok(!JSON.stringify(h.audit).includes("t0k3n") && !h.logs.join("").includes("t0k3n"), "the token is in no audit record or log line");
});

test("requested, then renewed when the node's new certificate is recorded; a node not provisioned again in time failed and is due again", async () => {
  const h = harness(settings({ burst: 2, ratePerMs: 1 / MIN }), accepted, 2);
  await h.run(1000, 1000);
  assert.deepEqual(h.calls.map((c) => c.identity), ["n0.example.net", "n1.example.net"]);
  assert.deepEqual(h.audit.map((a) => [a.identity, a.result, a.message]), [["n0.example.net", "requested", "Restarting after 5s"], ["n1.example.net", "requested", "Restarting after 5s"]]);
  // n0 is provisioned again: the ledger has its new certificate, the provisioner's record names it
  const newCert = { identity: "n0.example.net", serial: "new0", fingerprint: "g", notAfter: h.clock.now + 365 * DAY, issuedAt: h.clock.now };
  h.certs.push(newCert);
  h.clock.now += 30_000;
  h.r.recorded({ identity: "n0.example.net", outcome: "configure", certificate: { serial: "new0", fingerprint: "g", notAfter: new Date(newCert.notAfter).toISOString() } } as DecisionRecord);
  const renewed = h.audit.at(-1)!;
  assert.deepEqual([renewed.result, renewed.serial, renewed.newSerial, renewed.afterMs, renewed.home], ["renewed", "s0", "new0", 31_000, "home"]);
  assert.equal(await counter(h, "ok"), 1);
  // n1 is never provisioned again (its flow was deferred): after retry_after it failed, and is asked again
  h.r.recorded({ identity: "n1.example.net", outcome: "defer" } as DecisionRecord);
  await h.run(61 * MIN, MIN);
  const failed = h.audit.find((a) => a.result === "failed")!;
  assert.equal(failed.identity, "n1.example.net");
  assert.equal(failed.failure, "not_reprovisioned");
  assert.match(failed.message!, /latest outcome: defer/);
  assert.equal(await counter(h, "failed", "not_reprovisioned"), 1);
  assert.deepEqual(h.calls.map((c) => c.identity), ["n0.example.net", "n1.example.net", "n1.example.net"], "n1 asked again after retry_after, n0 never (its certificate is new)");
});

test("refusals, unreachable nodes and a standby: counted by reason, audited, asked again only after retry_after", async () => {
  const answers: Record<string, HomeCallResult> = {
    "n0.example.net": { ok: true, home: "home", reply: { statuscode: 1, statusmsg: "Incorrect provision token supplied", data: {} } as never },
    "n1.example.net": { ok: false, failure: "unreachable", message: "not connected to any home broker (no responders at home)" },
    "n2.example.net": { ok: false, failure: "timeout", message: "no reply within 1000 ms" },
  };
  const h = harness(settings({ burst: 3 }), (id) => answers[id]!, 3);
  h.active.on = false;
  await h.run(10 * MIN, MIN);
  assert.equal(h.calls.length, 0, "a standby (or paused) instance asks nobody");
  h.active.on = true;
  await h.run(1000, 1000);
  assert.deepEqual(h.audit.map((a) => [a.identity, a.result, a.failure, a.message]), [
    ["n0.example.net", "failed", "refused", "Incorrect provision token supplied"],
    ["n1.example.net", "failed", "unreachable", "not connected to any home broker (no responders at home)"],
    ["n2.example.net", "failed", "timeout", "no reply within 1000 ms"],
  ]);
  for (const reason of ["refused", "unreachable", "timeout"]) assert.equal(await counter(h, "failed", reason), 1, reason);
  assert.equal(await counter(h, "requested"), 0);
  await h.run(59 * MIN, MIN);
  assert.equal(h.calls.length, 3, "not asked again within retry_after");
  await h.run(2 * MIN, MIN);
  assert.equal(h.calls.length, 6, "asked again after it");
});

test("a certificate issued inside the window is counted and warned about once, and never asked", async () => {
  const h = harness(settings(), accepted, 0);
  const rec = (id: string) => ({ identity: id, outcome: "configure", certificate: { serial: id, fingerprint: "f", notAfter: new Date(h.clock.now + 7 * DAY).toISOString() } }) as DecisionRecord;
  h.r.recorded(rec("a.example.net"));
  h.r.recorded(rec("b.example.net"));
  assert.equal(await counter(h, "skipped", "validity_within_window"), 2);
  assert.equal(h.logs.filter((l) => l.includes("not be renewed automatically")).length, 1);
});

test("active-active: a node is asked only by the instance holding its claim, which keeps it once the node accepted", async () => {
  const released: Array<[string, boolean]> = [];
  const h = harness(settings({ burst: 3 }), (id) => (id === "n2.example.net" ? { ok: false, failure: "unreachable", message: "no responders" } : accepted()), 3, {
    claim: async (id) => id !== "n1.example.net",
    release: async (id, ok) => void released.push([id, ok]),
  });
  await h.run(1000, 1000);
  assert.deepEqual(h.calls.map((c) => c.identity), ["n0.example.net", "n2.example.net"], "n1 is another instance's");
  assert.deepEqual(released.sort(), [["n0.example.net", true], ["n2.example.net", false]]);
  assert.deepEqual([h.r.status().elsewhere, h.r.status().requested, h.r.status().failed], [1, 1, 1]);
  assert.ok(!h.audit.some((a) => a.identity === "n1.example.net"), "nothing is recorded for a node another instance renews");
});

test("after a wave, a pass does not read the wave's old certificates again: the cursor moves past them", async () => {
  const N = 200;
  const h = harness(settings({ burst: 10, ratePerMs: 60 / MIN }), accepted, N);
  // each node asked is provisioned again at once: its new certificate is in the ledger
  const renewNow = () => {
    for (const c of h.calls.splice(0)) {
      const fresh = { identity: c.identity, serial: `new-${c.identity}`, fingerprint: "g", notAfter: h.clock.now + 365 * DAY, issuedAt: h.clock.now };
      h.certs.push(fresh);
      h.r.recorded({ identity: c.identity, outcome: "configure", certificate: { serial: fresh.serial, fingerprint: "g", notAfter: new Date(fresh.notAfter).toISOString() } } as DecisionRecord);
    }
  };
  for (let t = 0; t < 5 * 60; t++) {
    await h.run(1000, 1000);
    renewNow();
  }
  assert.equal(await counter(h, "ok"), N, "the whole wave renewed");
  // without the cursor every pass would read all the old certificates before it: about N^2 / 2 probes
  assert.ok(h.source.replacedRead <= 2 * N, `${h.source.replacedRead} old certificates read for ${N} renewed`);
  // a certificate recorded late behind the cursor (another instance's, replicated late) is found within retry_after
  h.certs.push({ identity: "late.example.net", serial: "late", fingerprint: "f", notAfter: h.clock.now + DAY, issuedAt: h.clock.now - 300 * DAY });
  await h.run(60 * MIN, MIN);
  assert.deepEqual(h.calls.map((c) => c.identity), ["late.example.net"], "found when the cursor starts again");
});
