/**
 * A CA outage opens the signer's circuit breaker: nodes wait before gencsr and at signing
 * instead of being deferred and asked for a new key each time, the outage is logged once and
 * exported, and work resumes the moment the CA answers. Against a real `cfssl serve`.
 */
import { test } from "node:test";
import { once } from "node:events";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { initBuiltinCa } from "../../src/ca/index.js";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { startCfssl, type CfsslServer } from "../ca/cfssl-server.js";
import { fleetHandled, startTestDaemon } from "../helpers/daemon.js";

// small enough that the nodes left when the CA returns take well under the 5 s at full speed
const N = 150;

test("with cfssl down for 10 s mid-run: at most 1.1 gencsr per node, every node done within 5 s of its return", async () => {
  const { certPath, keyPath } = await initBuiltinCa(join(mkdtempSync(join(tmpdir(), "cp-cfssl-")), "ca"), { key: "rsa", commonName: "outage CA" });
  let cfssl: CfsslServer = await startCfssl(certPath, keyPath);
  const port = Number(new URL(cfssl.url).port);
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { type: "cfssl", url: cfssl.url, timeout: "2s" }, discovery: { interval: "60s", at_start: true } });
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 61, restartDelayMs: 50, upgradable: false, faults: { latency: 1, latencyMs: [10, 40] } });
  try {
    await d.waitFor((r) => r.filter((x) => x.outcome === "configure").length >= N / 3, 60_000, "a third of the fleet configured");
    const opened = once(d.provisioner, "signer", { signal: AbortSignal.timeout(30_000) });
    await cfssl.stop();
    assert.deepEqual(await opened, [false]);
    const status = d.provisioner.status();
    assert.equal(status.signer?.up, false, "the breaker opened while cfssl was down");
    const readyz = await fetch(`${d.admin.url}/readyz`);
    assert.equal(readyz.status, 503);
    assert.deepEqual(((await readyz.json()) as { signer: unknown }).signer, { kind: "cfssl", up: false });
    assert.match(await (await fetch(`${d.admin.url}/metrics`)).text(), /^choria_provisioner_signer_up\{site="default"\} 0$/m);
    await new Promise((r) => setTimeout(r, 10_000)); // the outage itself: 10 s of a CA that does not answer
    cfssl = await startCfssl(certPath, keyPath, 15_000, port);
    const back = performance.now();
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled after cfssl's return");
    const seconds = (performance.now() - back) / 1000;
    assert.ok(seconds <= 5, `every node was done ${seconds.toFixed(1)} s after cfssl came back`);
    const gencsr = fleet.report().totals.requests["choria_provision#gencsr"] ?? 0;
    assert.ok(gencsr <= 1.1 * N, `${gencsr} gencsr requests for ${N} nodes`);
    assert.match(await (await fetch(`${d.admin.url}/metrics`)).text(), /^choria_provisioner_signer_up\{site="default"\} 1$/m);
    assert.equal(d.records.filter((r) => /CA unavailable/.test(r.reason)).length, 0, "no node was deferred for the outage");
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
    await cfssl.stop();
  }
});
