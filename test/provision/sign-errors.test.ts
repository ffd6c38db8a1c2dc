/**
 * How the flow reads a signer's failure: by the error's class. A CsrRefusedError is a refusal
 * with its code, a CaUnavailableError defers, and any other error (a system error with a `code`
 * such as EPIPE included) defers as a failed signing, never as a refusal of the node's CSR.
 * The node is scripted behind RpcCaller; the CSR and its checker are real.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { csrChecker } from "../../src/ca/index.js";
import { provisionNode, type FlowObserver } from "../../src/provision/flow.js";
import { defaultFlowOptions } from "../../src/provision/flow-options.js";
import type { RpcCaller } from "../../src/provision/interfaces.js";
import type { RpcReplyBody } from "../../src/protocol/index.js";
import { CaUnavailableError, CsrRefusedError, type Signer } from "../../src/types/index.js";
import { makeCsr } from "../ca/csr-fixtures.js";
import { configureDecision } from "../helpers/decision.js";

const ID = "node1.example.net";
let csrPem = "";

before(async () => {
  csrPem = await makeCsr({ cn: ID, key: { kind: "ec", curve: "P-256" } });
});

const node: RpcCaller = {
  async call<T>(_identity: string, _agent: string, action: string) {
    const data = action === "gencsr" ? { csr: csrPem, public_key: "", ssldir: "/etc/choria/ssl" } : action === "inventory" ? { facts: {}, agents: [], classes: [], collectives: [], version: "0.30.2" } : {};
    return { action, statuscode: 0, statusmsg: "OK", data } as RpcReplyBody<T>;
  },
};

const decision = configureDecision(ID);

async function signWith(failure: Error): Promise<{ outcome: string; reason: string; refusals: string[] }> {
  const refusals: string[] = [];
  const observer: FlowObserver = { rpcTime() {}, rpcError() {}, policyEvaluated() {}, csrRefused: (c) => refusals.push(c), signed() {}, signFailed() {}, lockHeld() {} };
  const signer: Signer = { kind: "scripted", sign: async () => Promise.reject(failure), close: async () => {} };
  const { record } = await provisionNode(ID, { rpc: node, decider: { ref: decision.policy, decide: async () => decision }, signer, csr: csrChecker(), observer }, { ...defaultFlowOptions(), token: "tok" });
  return { outcome: record.outcome, reason: record.reason, refusals };
}

test("a system error with a code (EPIPE) from the signer defers the node; it is not a CSR refusal", async () => {
  const r = await signWith(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
  assert.deepEqual(r, { outcome: "defer", reason: "signing failed: write EPIPE", refusals: [] });
});

test("the signer's CsrRefusedError is a refusal with its code", async () => {
  const r = await signWith(new CsrRefusedError("weak_key", "RSA key of 1024 bits"));
  assert.deepEqual(r, { outcome: "refused", reason: "CSR refused by signer: RSA key of 1024 bits", refusals: ["weak_key"] });
});

test("the signer's CaUnavailableError defers the node", async () => {
  const r = await signWith(new CaUnavailableError("connection refused"));
  assert.deepEqual(r, { outcome: "defer", reason: "CA unavailable: connection refused", refusals: [] });
});
