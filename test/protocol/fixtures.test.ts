import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeLifecycle, decodeRegistration, decodeReply, decodeRequest, decodeRpcReply, decodeRpcRequest, encodeReply, encodeRequest, replySubject, withinTtl } from "../../src/protocol/index.js";
import { listSpec, loadSpecJson, specPath } from "../helpers/shared.js";
import { assertOfficial } from "../helpers/wire-schemas.js";

const constructed = listSpec("examples/constructed");

for (const name of constructed.filter((f) => f.endsWith(".request.json"))) {
  test(`decodes request fixture ${name} exactly as recorded`, () => {
    const fx = loadSpecJson("examples/constructed", name);
    const d = decodeRequest(JSON.stringify(fx.transport));
    assert.deepEqual(d.secure, fx.decoded.secure_request);
    assert.deepEqual(d.request, fx.decoded.request);
    assert.equal(d.replyTo, fx.transport.headers["reply-to"]);
    assertOfficial("v1", "transport", fx.transport);
    assertOfficial("v1", "secure_request", d.secure);
    assertOfficial("v1", "request", d.request);
    // the reply subject the request names is the one our subject builder makes
    assert.equal(d.replyTo, replySubject(d.request.envelope.callerid, d.request.envelope.requestid));
    if (d.request.envelope.agent !== "discovery") {
      const body = decodeRpcRequest(d.payload);
      assert.equal(body.agent, d.request.envelope.agent);
      assert.ok(body.action.length > 0);
    } else {
      assert.equal(d.payload.toString(), "ping");
    }
  });

  test(`re-encodes request fixture ${name} byte for byte (Go field order)`, () => {
    const fx = loadSpecJson("examples/constructed", name);
    const e = fx.decoded.request.envelope;
    const seen = fx.transport.headers["seen-by"][0];
    const enc = encodeRequest({
      agent: e.agent,
      payload: fx.decoded.request.message,
      callerid: e.callerid,
      senderid: e.senderid,
      collective: e.collective,
      ttl: e.ttl,
      time: e.time,
      filter: e.filter,
      requestId: e.requestid,
      replyTo: fx.transport.headers["reply-to"],
      connectedServer: seen[0],
    });
    assert.equal(Buffer.from(enc.bytes).toString(), JSON.stringify(fx.transport));
  });
}

for (const name of constructed.filter((f) => f.endsWith(".reply.json"))) {
  test(`decodes reply fixture ${name}, verifies its hash and re-encodes it byte for byte`, () => {
    const fx = loadSpecJson("examples/constructed", name);
    const d = decodeReply(JSON.stringify(fx.transport));
    assert.deepEqual(d.secure, fx.decoded.secure_reply);
    assert.deepEqual(d.reply, fx.decoded.reply);
    assert.equal(d.sender, fx.transport.headers.mc_sender);
    assertOfficial("v1", "secure_reply", d.secure);
    assertOfficial("v1", "reply", d.reply);
    const env = d.reply.envelope;
    const bytes = encodeReply({ requestId: env.requestid, agent: env.agent, senderid: env.senderid, payload: d.reply.message, time: env.time, connectedServer: fx.transport.headers["seen-by"][0][0] });
    assert.equal(Buffer.from(bytes).toString(), JSON.stringify(fx.transport));
    if (env.agent !== "discovery") {
      const body = decodeRpcReply(d.reply.message);
      assert.equal(typeof body.statuscode, "number");
    } else {
      assert.equal(d.reply.message, "pong");
    }
  });
}

test("decodes the registration fixture down to the file content", () => {
  const fx = loadSpecJson("examples/constructed", "registration-file_content.json");
  const d = decodeRegistration(JSON.stringify(fx.transport));
  assert.equal(d.identity, fx.decoded.request.envelope.senderid);
  assert.equal(d.request.replyTo, "dev.null");
  assert.deepEqual(d.document, fx.decoded.file_content_message);
  assert.ok(d.content.length > 0);
  assert.equal(d.content.toString(), typeof fx.decoded.file_content_decoded === "string" ? fx.decoded.file_content_decoded : JSON.stringify(fx.decoded.file_content_decoded));
});

for (const name of ["lifecycle-startup.choria-format.json", "lifecycle-startup.cloudevent.json", "lifecycle-shutdown.choria-format.json", "lifecycle-shutdown.cloudevent.json"]) {
  test(`decodes lifecycle example ${name}`, () => {
    const text = readFileSync(specPath("examples", name), "utf8");
    const d = decodeLifecycle(text);
    assert.equal(d.type, name.includes("startup") ? "startup" : "shutdown");
    assert.equal(d.format, name.includes("cloudevent") ? "cloudevent" : "choria");
    assert.ok(d.event.identity.length > 0);
  });
}

for (const name of ["lifecycle-startup-provision_mode_server.cloudevent.json", "lifecycle-startup-provisioner.choria-format.json"]) {
  test(`decodes constructed lifecycle ${name}`, () => {
    const fx = loadSpecJson("examples/constructed", name);
    const d = decodeLifecycle(JSON.stringify(fx.payload));
    assert.equal(d.type, "startup");
    assert.equal(fx.subject, `choria.lifecycle.event.startup.${d.event.component}`);
  });
}

test("ttl window is strict on both sides", () => {
  assert.equal(withinTtl({ ttl: 60, time: 1000 }, 1000), true);
  assert.equal(withinTtl({ ttl: 60, time: 940 }, 1000), false);
  assert.equal(withinTtl({ ttl: 60, time: 941 }, 1000), true);
  assert.equal(withinTtl({ ttl: 60, time: 1060 }, 1000), false);
});
