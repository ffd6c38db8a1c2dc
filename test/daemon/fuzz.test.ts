/**
 * Fuzzing every subject the daemon listens on while a fleet is provisioned: lifecycle startup
 * and alive events, registration data (both subjects), and replies, both on random request ids
 * and to live requests of decoy nodes the fuzzer announces and answers with mutated replies.
 * fast-check makes the messages (seeded, so a failure replays) from random bytes, random JSON
 * and mutations of valid messages. Asserts: no crash, the whole fleet provisioned, and the heap
 * back near its baseline afterwards (a relative bound: no per-message retention).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import {
  LEGACY_REGISTRATION_SUBJECT,
  REGISTRATION_SUBJECT,
  decodeRequest,
  encodeLifecycle,
  encodeRegistration,
  encodeReply,
  encodeRpcReply,
  lifecycleSubject,
  newLifecycleEvent,
  replyPrefix,
} from "../../src/protocol/index.js";
import { startFleet } from "../../src/sim/index.js";
import { closeNats, connectNats, startNatsServer } from "../../src/transport/index.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";

const SEED = 20_240_517;
const RUNS = 1500;
const TIME_LIMIT_MS = 20_000;
const DECOYS = Array.from({ length: 20 }, (_, i) => `decoy-${i}.fuzz.example.net`);

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** valid messages of each kind, for the mutations to start from */
function samples(callerPrefix: string): Array<{ subject: string; bytes: Uint8Array }> {
  const enc = new TextEncoder();
  const ev = (type: "startup" | "alive", f: "choria" | "cloudevent") => ({ subject: lifecycleSubject(type, "provision_mode_server"), bytes: enc.encode(encodeLifecycle(newLifecycleEvent(type, DECOYS[0], "provision_mode_server", { version: "0.29.4" }), f)) });
  const reg = (subject: string) => ({ subject, bytes: encodeRegistration({ identity: DECOYS[1], file: "/etc/choria/facts.json", content: '{"a":1}', mtime: 1 }) });
  const reply = { subject: `${callerPrefix}.0123456789abcdef0123456789abcdef`, bytes: encodeReply({ requestId: "0123456789abcdef0123456789abcdef", agent: "rpcutil", senderid: DECOYS[2], payload: encodeRpcReply({ action: "inventory", statuscode: 0, statusmsg: "OK", data: {} }) }) };
  return [ev("startup", "choria"), ev("startup", "cloudevent"), ev("alive", "cloudevent"), reg(REGISTRATION_SUBJECT), reg(LEGACY_REGISTRATION_SUBJECT), reply];
}

/** a message: random bytes, random JSON, or a valid one with bytes flipped, cut, or a JSON field replaced */
function messageArb(valid: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  const mutated = fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.option(fc.nat())).map(([v, flips, cut]) => {
    const b = Uint8Array.from(v);
    for (const [i, x] of flips) b[i % b.length] = x;
    return cut === null ? b : b.slice(0, cut % (b.length + 1));
  });
  const fieldSwap = fc.tuple(fc.constantFrom(...valid), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 })).map(([v, key, value]) => {
    try {
      const doc = JSON.parse(dec.decode(v)) as Record<string, unknown>;
      const keys = Object.keys(doc);
      doc[keys.length && key.length % 2 ? keys[key.length % keys.length] : key] = value;
      return enc.encode(JSON.stringify(doc));
    } catch {
      return v;
    }
  });
  return fc.oneof(fc.uint8Array({ maxLength: 2048 }), fc.json({ depthSize: "small" }).map((j) => enc.encode(j)), mutated, fieldSwap);
}

test("random and mutated messages on every subject the daemon listens on: no crash, the whole fleet provisioned, the heap back to baseline", { timeout: 180_000 }, async (t) => {
  const srv = await startNatsServer();
  after(() => srv.stop());
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, discovery: { interval: "1h", timeout: "1500ms", quiet: "300ms", at_start: false } });
  after(() => d.stop(2000));
  const nc = await connectNats({ servers: srv.url, name: "fuzzer" });
  after(() => closeNats(nc));
  const callerPrefix = replyPrefix(`choria=${d.settings.identity}`);
  const valid = samples(callerPrefix);
  const subjects = [...new Set(valid.map((v) => v.subject)), `${callerPrefix}.x`];
  const msgArb = messageArb(valid.map((v) => v.bytes));
  // decoys: the daemon asks them, and the fuzzer answers each live request with a mutated reply
  const replies = fc.sample(msgArb, { numRuns: 200, seed: SEED + 1 });
  let replied = 0;
  nc.subscribe("provisioning.node.*.fuzz.example.net", {
    callback: (_e, m) => {
      try {
        const req = decodeRequest(m.data);
        const good = encodeReply({ requestId: req.request.envelope.requestid, agent: req.request.envelope.agent, senderid: m.subject.slice("provisioning.node.".length), payload: encodeRpcReply({ action: "inventory", statuscode: 0, statusmsg: "OK", data: {} }) });
        nc.publish(req.replyTo!, replied % 3 === 0 ? good : replies[replied % replies.length]);
        replied++;
      } catch {
        /* not ours to judge */
      }
    },
  });
  for (const id of DECOYS) nc.publish(lifecycleSubject("startup", "provision_mode_server"), encodeLifecycle(newLifecycleEvent("startup", id, "provision_mode_server", { version: "0.29.4" }), "choria"));
  await nc.flush();
  await d.waitFor((rs) => rs.some((r) => r.identity.endsWith(".fuzz.example.net")), 30_000, "a decoy's record");
  // the baseline is a daemon that has provisioned a fleet like the one below (code compiled, metric labels made, pools warm)
  const warm = await startFleet({ servers: srv.url, nodes: 100, seed: 3, restartDelayMs: 50, domain: "warm.example.net", noResponders: false });
  await d.waitFor((rs) => fleetHandled(rs, warm), 120_000, "the warm-up fleet provisioned");
  await warm.stop();
  const baseline = heapAfterGc();

  const fleet = await startFleet({ servers: srv.url, nodes: 100, seed: 3, restartDelayMs: 50, noResponders: false });
  let sent = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...subjects), fc.string({ maxLength: 34 }), msgArb, async (subject, id, bytes) => {
        nc.publish(subject.endsWith(".x") ? `${callerPrefix}.${id.replace(/[\s.*>]/g, "") || "x"}` : subject, bytes);
        if (++sent % 100 === 0) await nc.flush();
        assert.equal(d.nc.isClosed(), false, "the daemon's connection is up");
      }),
      { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
    );
    await nc.flush();
    await d.waitFor((rs) => fleetHandled(rs, fleet), 120_000, "the whole fleet provisioned");
    // the sim's default policy defers and shuts down some nodes: those are handled too, but none may be lost to the fuzz
    const latest = latestRecords(d.records);
    const lost = fleet.identities.filter((id) => !["configure", "shutdown", "defer"].includes(latest.get(id)?.outcome ?? ""));
    assert.deepEqual(lost, [], "fleet nodes not provisioned");
    assert.ok(fleet.report().totals.configured > 50, "most of the fleet configured");
    assert.ok(sent >= 200, `only ${sent} fuzz messages were sent`);
    assert.ok(replied > 0, "the decoys' live requests got fuzzed replies");
    const metrics = await d.metrics.registry.metrics();
    assert.match(metrics, /choria_provisioner_intake_errors\{[^}]*\} [1-9]/, "the fuzz was counted as intake errors");
  } finally {
    await fleet.stop();
  }
  // the fleet's own memory is gone again; what the daemon kept per message would remain
  const heapAfter = heapAfterGc();
  t.diagnostic(`${sent} fuzz messages, ${replied} fuzzed replies; heap ${(baseline / 1e6).toFixed(1)} MB before, ${(heapAfter / 1e6).toFixed(1)} MB after`);
  assert.ok(heapAfter < baseline * 1.15, `heap ${Math.round(heapAfter / 1e6)} MB after ${sent} fuzz messages, baseline ${Math.round(baseline / 1e6)} MB`);
  assert.equal(d.nc.isClosed(), false);
});
