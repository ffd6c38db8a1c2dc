/**
 * What the flow records when a node stops answering: a step that timed out is followed by a
 * probe, and only the broker's no-responders (nothing listens for the node) makes it `gone`. Every configure request is announced to the audit,
 * and waited for, before it goes out. The node is scripted behind RpcCaller, as the failures it
 * plays (a reply lost, a node gone between two requests) are hard to time with a real one; the
 * CSR and its checker are real.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { csrChecker } from "../../src/ca/index.js";
import { provisionNode, type FlowObserver } from "../../src/provision/flow.js";
import { defaultFlowOptions } from "../../src/provision/flow-options.js";
import type { RpcCaller } from "../../src/provision/interfaces.js";
import type { RpcReplyBody } from "../../src/protocol/index.js";
import { RpcNoRespondersError, RpcTimeoutError } from "../../src/transport/errors.js";
import type { ConfiguringRecord } from "../../src/types/index.js";
import { makeCsr } from "../ca/csr-fixtures.js";
import { configureDecision } from "../helpers/decision.js";

const ID = "node1.example.net";
let csrPem = "";

before(async () => {
  csrPem = await makeCsr({ cn: ID, key: { kind: "ec", curve: "P-256" } });
});

type Script = Partial<Record<string, "timeout" | "absent">>;

/** a node that answers every action except the scripted ones; `log` is the order of what happened */
function scripted(script: Script, log: string[]): RpcCaller {
  return {
    async call<T>(identity: string, agent: string, action: string) {
      log.push(action);
      const fault = script[action];
      if (fault === "timeout") throw new RpcTimeoutError(identity, agent, action, 1);
      if (fault === "absent") throw new RpcNoRespondersError(identity, agent, action);
      const data = action === "gencsr" ? { csr: csrPem, public_key: "", ssldir: "/etc/choria/ssl" } : action === "inventory" ? { facts: {}, agents: [], classes: [], collectives: [], version: "0.30.2" } : {};
      return { action, statuscode: 0, statusmsg: "OK", data } as RpcReplyBody<T>;
    },
  };
}

const observer: FlowObserver = { rpcTime() {}, rpcError() {}, policyEvaluated() {}, csrRefused() {}, signed() {}, signFailed() {}, lockHeld() {} };
const decision = configureDecision(ID);
const signer = { kind: "scripted", sign: async () => ({ certificatePem: "cert", caPem: "ca", serial: "01", fingerprint: "ff", notAfter: "" }), close: async () => {} };

async function run(script: Script) {
  const log: string[] = [];
  const lines: ConfiguringRecord[] = [];
  const configuring = async (r: ConfiguringRecord) => {
    // the write takes a while: the request must wait for it
    await new Promise((res) => setTimeout(res, 5));
    lines.push(r);
    log.push(`audit#${r.attempt}`);
  };
  const o = defaultFlowOptions();
  const fast = { tries: 2, timeoutMs: 1, maxTimeouts: 2 };
  const res = await provisionNode(ID, { rpc: scripted(script, log), decider: { ref: decision.policy, decide: async () => decision }, signer, csr: csrChecker(), observer, configuring }, { ...o, token: "tok", backoff: { baseMs: 1, maxMs: 2 }, steps: { ...o.steps, configure: fast, restart: fast, gencsr: { ...fast, maxTimeouts: 1 } } });
  return { ...res, log, lines };
}

test("each configure request is in the audit before it is sent, and the record counts them", async () => {
  const r = await run({ configure: "timeout" });
  assert.deepEqual(r.log.filter((a) => a === "configure" || a.startsWith("audit#")), ["audit#1", "configure", "audit#2", "configure"]);
  assert.deepEqual(r.lines.map((l) => [l.kind, l.identity, l.attempt, l.decision.time, l.certificate?.serial]), [["configuring", ID, 1, r.record.time, "01"], ["configuring", ID, 2, r.record.time, "01"]]);
  assert.equal(r.record.outcome, "error");
  assert.equal(r.record.configures, 2);
  assert.match(r.record.reason, /^configure sent 2 time\(s\), reply lost: the node may have applied it/);
});

test("restart's reply lost and the node gone from provisioning mode: gone, with its configure in the record", async () => {
  const r = await run({ restart: "timeout", ping: "absent" });
  assert.equal(r.record.outcome, "gone");
  assert.equal(r.provisioned, false);
  assert.equal(r.record.configures, 1);
  assert.match(r.record.reason, /^not in provisioning mode: choria_provision#restart: .* nothing answers for the node any more; configure was sent 1 time\(s\) and answered$/);
  assert.deepEqual(r.log.slice(-2), ["restart", "ping"]);
});

test("restart's reply lost and the node still answering: an error, held while it may be restarting", async () => {
  const r = await run({ restart: "timeout" });
  assert.equal(r.record.outcome, "error");
  assert.ok(r.holdMs > 0);
  assert.equal(r.log.at(-1), "ping");
});

test("a step timing out on a node that has left provisioning mode is gone, not an error", async () => {
  const r = await run({ gencsr: "timeout", ping: "absent" });
  assert.equal(r.record.outcome, "gone");
  assert.match(r.record.reason, /^not in provisioning mode: choria_provision#gencsr: .* nothing answers for the node any more$/);
  assert.equal(r.record.configures, undefined);
});

test("a step timing out on a node still there is an error", async () => {
  const r = await run({ gencsr: "timeout" });
  assert.equal(r.record.outcome, "error");
  assert.deepEqual(r.log.slice(-2), ["gencsr", "ping"]);
});
