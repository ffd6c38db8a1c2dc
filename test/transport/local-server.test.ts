import { test } from "node:test";
import assert from "node:assert/strict";
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
