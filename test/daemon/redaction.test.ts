/**
 * Credentials in broker URLs never reach a log line or /status, and an admin endpoint open
 * beyond loopback is warned about at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import pino from "pino";
import { resolveSettings } from "../../src/config/index.js";
import { startDaemon } from "../../src/daemon/start.js";
import { redactUrls, startNatsServer } from "../../src/transport/index.js";
import { isLoopbackListen } from "../../src/admin/server.js";
import { REPO } from "../helpers/daemon.js";

test("redactUrls replaces userinfo wherever a URL appears in a text", () => {
  assert.equal(redactUrls("nats://alice:pw@b1:4222,tls://tok@b2:4222"), "nats://REDACTED@b1:4222,tls://REDACTED@b2:4222");
  assert.equal(redactUrls('cannot connect to "nats://u:p%40ss@h:1": refused'), 'cannot connect to "nats://REDACTED@h:1": refused');
  assert.equal(redactUrls("nats://h:4222 and user@example.net"), "nats://h:4222 and user@example.net");
  assert.equal(isLoopbackListen("127.0.0.1:8080"), true);
  assert.equal(isLoopbackListen("[::1]:8080"), true);
  assert.equal(isLoopbackListen("0.0.0.0:8080"), false);
  assert.equal(isLoopbackListen(":8080"), false);
});

test("the daemon logs and shows its brokers without their passwords, and warns when admin.listen is not loopback", async () => {
  const srv = await startNatsServer();
  let out = "";
  const sink = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
  const url = srv.url.replace("nats://", "nats://operator:hunter2secret@");
  const s = resolveSettings({ broker: url, identity: "provisioner.test", policies: `${REPO}policies`, features: { pki: false }, watch: false, discovery: { at_start: false, interval: "1h" }, admin: { listen: "0.0.0.0:0" } }, {});
  const d = await startDaemon(s, { log: pino({ level: "info" }, sink) });
  try {
    const status = await (await fetch(`${d.admin.url.replace("0.0.0.0", "127.0.0.1")}/status`)).text();
    assert.ok(!status.includes("hunter2secret"), status);
    assert.match(status, /nats:\/\/REDACTED@127\.0\.0\.1/);
  } finally {
    await d.stop(1000);
    await srv.stop();
  }
  assert.match(out, /provisioner started/);
  assert.ok(!out.includes("hunter2secret"), "a password in the log");
  assert.match(out, /REDACTED@127\.0\.0\.1/);
  assert.match(out, /"level":40[^\n]*admin\.listen is not a loopback address/);
});
