import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { startNatsServer } from "../../src/transport/local-server.js";

test("starts a real nats-server on a free loopback port and stops it by PID", async () => {
  const srv = await startNatsServer();
  assert.ok(srv.pid > 0);
  const nc = await connect({ servers: srv.url });
  const sub = nc.subscribe("x.y", { max: 1 });
  nc.publish("x.y", "hello");
  for await (const m of sub) assert.equal(new TextDecoder().decode(m.data), "hello");
  await nc.close();
  await srv.stop();
  assert.throws(() => process.kill(srv.pid, 0));
});

test("with TLS: clients connect over TLS, and stop() leaves no file behind", async () => {
  // this file's process only: every temporary directory the server makes lands here
  const tmp = mkdtempSync(join(tmpdir(), "local-server-"));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    const certDir = mkdtempSync(join(tmp, "cert-"));
    const cert = join(certDir, "cert.pem");
    const key = join(certDir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
    const srv = await startNatsServer({ tls: { cert, key } });
    const nc = await connect({ servers: srv.url, tls: { caFile: cert } });
    assert.equal(nc.info?.tls_required, true);
    await nc.close();
    await srv.stop();
    rmSync(certDir, { recursive: true });
    assert.deepEqual(readdirSync(tmp), []);
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(tmp, { recursive: true, force: true });
  }
});
