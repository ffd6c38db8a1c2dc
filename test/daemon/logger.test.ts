/**
 * The logger's redaction: secrets are censored at the top level and one level down, headers'
 * authorization wherever headers appear at those levels, and nothing else is touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once, type EventEmitter } from "node:events";
import pino from "pino";
import { createLogger, LOG_CENSOR, redactLogObject } from "../../src/daemon/logger.js";

test("an object with nothing secret is passed on as it is, not copied", () => {
  const o = { identity: "n1.example.net", outcome: "configure", ms: 82.9, policy: { name: "fleet", version: "1.0.0" }, list: [{ token: "in-an-array" }] };
  assert.equal(redactLogObject(o), o);
});

test("secret keys are censored at the top level and one level down, without touching the caller's object", () => {
  const o = {
    token: "t0p",
    identity: "n1",
    config: { token: "c0nf", url: "nats://x" },
    data: { key: "k3y", cn: "n1" },
    brokerPassword: "bp",
    headers: { authorization: "Bearer abc", accept: "json" },
    req: { headers: { authorization: "Basic xyz" }, method: "GET" },
  };
  const before = JSON.stringify(o);
  const r = redactLogObject(o) as typeof o;
  assert.equal(JSON.stringify(o), before, "the caller's object is unchanged");
  assert.equal(r.token, LOG_CENSOR);
  assert.equal(r.brokerPassword, LOG_CENSOR);
  assert.deepEqual(r.config, { token: LOG_CENSOR, url: "nats://x" });
  assert.deepEqual(r.data, { key: LOG_CENSOR, cn: "n1" });
  assert.deepEqual(r.headers, { authorization: LOG_CENSOR, accept: "json" });
  assert.deepEqual(r.req, { headers: { authorization: LOG_CENSOR }, method: "GET" });
  assert.equal(r.identity, "n1");
});

test("the daemon's logger writes censored lines and keeps the rest of the line", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-logger-"));
  try {
    const file = join(dir, "log.jsonl");
    const log = createLogger({ file, level: "debug" });
    // the destination opens its file asynchronously; a flush before that has nothing to write to
    const dest = (log as unknown as Record<symbol, EventEmitter>)[pino.symbols.streamSym]!;
    await once(dest, "ready");
    log.info({ identity: "n1.example.net", outcome: "configure" }, "configured");
    log.warn({ token: "s3cret-token", data: { password: "hunter2" }, adminToken: "adm1n" }, "with secrets");
    log.debug({ err: "boom" }, "plain");
    log.child({ component: "ca", brokerToken: "ch1ld-t0ken" }).info("from a child");
    log.child({ component: "ha" }).child({ data: { key: "gr4ndchild-k3y" } }).info("from a grandchild");
    // ending the destination writes out everything buffered before it closes
    const closed = once(dest, "close");
    (dest as unknown as { end(): void }).end();
    await closed;
    const text = readFileSync(file, "utf8");
    for (const secret of ["s3cret-token", "hunter2", "adm1n", "ch1ld-t0ken", "gr4ndchild-k3y"]) assert.ok(!text.includes(secret), `${secret} is not in the log`);
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 5);
    assert.equal(lines[0]!.identity, "n1.example.net");
    assert.equal(lines[0]!.msg, "configured");
    assert.equal(lines[1]!.token, LOG_CENSOR);
    assert.deepEqual(lines[1]!.data, { password: LOG_CENSOR });
    assert.equal(lines[2]!.err, "boom");
    assert.equal(lines[3]!.component, "ca");
    assert.equal(lines[3]!.brokerToken, LOG_CENSOR);
    assert.equal(lines[4]!.component, "ha");
    assert.deepEqual(lines[4]!.data, { key: LOG_CENSOR });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
