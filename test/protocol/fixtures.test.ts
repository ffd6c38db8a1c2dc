/**
 * Replies and lifecycle events recorded from a real go-choria v0.30.2 server in provisioning mode
 * (test/fixtures/real-choria, see its README): our decoder reads them, verifies each reply's hash,
 * and our encoder rebuilds them byte for byte (Go's field order), with no Go needed at test time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeLifecycle, decodeReply, decodeRpcReply, encodeReply } from "../../src/protocol/index.js";
import { OFFICIAL_SKIP, assertOfficial } from "../helpers/wire-schemas.js";

const DIR = "test/fixtures/real-choria";
const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
const load = (name: string): any => JSON.parse(readFileSync(join(DIR, name), "utf8"));

test("the recorded fixtures are there: replies for every action the provisioner uses, and lifecycle events", () => {
  for (const f of ["rpcutil-inventory.reply.json", "choria_provision-gencsr.reply.json", "choria_provision-configure.reply.json", "choria_provision-restart.reply.json", "discovery-ping.reply.json", "lifecycle.startup-provision_mode_server.json"]) assert.ok(files.includes(f), f);
});

for (const name of files.filter((f) => f.endsWith(".reply.json"))) {
  test(`decodes the real reply ${name}, verifies its hash and re-encodes it byte for byte`, () => {
    const fx = load(name);
    const d = decodeReply(JSON.stringify(fx.transport));
    assert.equal(d.sender, fx.transport.headers.mc_sender);
    const env = d.reply.envelope;
    const bytes = encodeReply({ requestId: env.requestid, agent: env.agent, senderid: env.senderid, payload: d.reply.message, time: env.time, connectedServer: fx.transport.headers["seen-by"][0][0] });
    assert.equal(Buffer.from(bytes).toString(), JSON.stringify(fx.transport));
    if (env.agent === "discovery") assert.equal(d.reply.message, "pong");
    else assert.deepEqual(decodeRpcReply(d.reply.message), fx.body);
  });

  test(`the real reply ${name} validates against the official schemas`, { skip: OFFICIAL_SKIP }, () => {
    const fx = load(name);
    const d = decodeReply(JSON.stringify(fx.transport));
    assertOfficial("v1", "secure_reply", d.secure);
    assertOfficial("v1", "reply", d.reply);
  });
}

for (const name of files.filter((f) => f.startsWith("lifecycle."))) {
  test(`decodes the real lifecycle event ${name}`, () => {
    const fx = load(name);
    const d = decodeLifecycle(JSON.stringify(fx.payload));
    assert.equal(d.format, "cloudevent");
    assert.equal(fx.subject, `choria.lifecycle.event.${d.type}.${d.event.component}`);
    assert.equal(d.event.identity, "real-a.fidelity.example.net");
  });
}
