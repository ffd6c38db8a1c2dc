/** Fleet options that change what goes on the wire: registration, lifecycle format, facts, recording, and the CLI. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import type { NatsConnection } from "nats";
import { connectNats, RpcClient, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { LEGACY_REGISTRATION_SUBJECT, REGISTRATION_SUBJECT, decodeRegistration } from "../../src/protocol/index.js";
import { generateFacts, identityOf, KNOWN_DCS, startFleet } from "../../src/sim/index.js";
import type { RecordedInventory } from "../../src/types/recorded.js";
import { LifecycleLog, configData, ev, signCsr } from "./helpers.js";
import { makeTestCa } from "../helpers/ca.js";

let srv: LocalNatsServer;
let nc: NatsConnection;
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "sim-test-"));
  dirs.push(d);
  return d;
};

before(async () => {
  srv = await startNatsServer();
  nc = await connectNats({ servers: srv.url });
});
after(async () => {
  await nc?.close();
  await srv?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("sim: options", () => {
  it("registration data on the current and the legacy subject, gzip file_content", async () => {
    const seen: Record<string, Set<string>> = { [REGISTRATION_SUBJECT]: new Set(), [LEGACY_REGISTRATION_SUBJECT]: new Set() };
    let resolve!: () => void;
    const all = new Promise<void>((r) => (resolve = r));
    let zipped = true;
    for (const subject of Object.keys(seen)) {
      nc.subscribe(subject, {
        callback: (_e, m) => {
          const d = decodeRegistration(m.data);
          zipped &&= typeof d.document.zcontent === "string";
          assert.equal(d.replyTo, "dev.null");
          assert.equal(d.protocol, 1);
          assert.equal(JSON.parse(d.content.toString()).identity, d.identity);
          seen[m.subject].add(d.identity);
          if (Object.values(seen).every((s) => s.size === 3)) resolve();
        },
      });
    }
    await nc.flush();
    const fleet = await startFleet({ servers: srv.url, nodes: 3, registration: { intervalMs: 500 }, legacyRegistration: true });
    try {
      await all;
      assert.ok(zipped);
      assert.ok(fleet.report().totals.registrations >= 3);
    } finally {
      await fleet.stop();
    }
  });

  it("Choria lifecycle format, startup ramp and republishStartup", async () => {
    const log = new LifecycleLog(nc);
    await nc.flush();
    const fleet = await startFleet({ servers: srv.url, nodes: 4, lifecycleFormat: "choria", startupRampMs: 100, domain: "choria.test" });
    try {
      await fleet.startupComplete;
      const id = fleet.identities[2];
      assert.equal(id, "sim-00003.choria.test");
      const e = await log.next(ev("startup", id));
      assert.equal(e.format, "choria");
      assert.deepEqual(Object.keys(e.raw), ["protocol", "id", "identity", "component", "timestamp", "version"]);
      fleet.republishStartup(id);
      await log.next(ev("startup", id), 2000, 2);
    } finally {
      await fleet.stop();
    }
  });

  it("alive events: each node in provisioning mode sends them every interval, with its version; none once it has left", async () => {
    const log = new LifecycleLog(nc);
    await nc.flush();
    const ca = await makeTestCa();
    const fleet = await startFleet({ servers: srv.url, nodes: 3, alive: { intervalMs: 300, firstWithinMs: 100 }, restartDelayMs: 20 });
    try {
      const alive = (id: string) => (e: { type: string; subject: string; event: { identity: string } }) => e.type === "alive" && e.event.identity === id && e.subject === "choria.lifecycle.event.alive.provision_mode_server";
      for (const id of fleet.identities) {
        const e = await log.next(alive(id), 5000, 2);
        assert.equal(e.event.version, fleet.report().nodes.find((n) => n.identity === id)!.version);
      }
      // provision the first node: from its restart on it is a server, and sends no provisioning-mode alive events
      const id = fleet.identities[0]!;
      const rpc = new RpcClient({ nc, identity: "provisioner.test" });
      const csr = (await rpc.call<{ csr: string }>(id, "choria_provision", "gencsr", {})).data.csr;
      assert.equal((await rpc.call(id, "choria_provision", "configure", configData(id, { certificate: await signCsr(ca, csr), ca: ca.pem, home: srv.url }))).statuscode, 0);
      assert.equal((await rpc.call(id, "choria_provision", "restart", { splay: 1 })).statuscode, 0);
      await log.next(ev("startup", id, "server"));
      const before = log.count(alive(id));
      // two more alive events from another node prove at least one interval passed meanwhile
      const other = fleet.identities[1]!;
      await log.next(alive(other), 5000, log.count(alive(other)) + 2);
      assert.equal(log.count(alive(id)), before, "no alive event from a node that left provisioning mode");
      assert.ok(fleet.report().totals.aliveEvents >= 6);
      await rpc.close();
    } finally {
      await fleet.stop();
    }
  });

  it("startupComplete means the broker has every startup event; flush() covers later publishes", async () => {
    let startups = 0;
    const sub = nc.subscribe("choria.lifecycle.event.startup.>", { callback: () => startups++ });
    await nc.flush();
    const N = 300;
    const fleet = await startFleet({ servers: srv.url, nodes: N, startupRampMs: 0 });
    try {
      await fleet.startupComplete;
      // the broker delivers in order, so our own round trip after it proves delivery to us
      await nc.flush();
      assert.equal(startups, N);
      fleet.republishStartup();
      await fleet.flush();
      await nc.flush();
      assert.equal(startups, 2 * N);
    } finally {
      sub.unsubscribe();
      await fleet.stop();
    }
  });

  it("facts: generated facts are realistic and consistent; a file can override them for all or per identity", async () => {
    const ids = Array.from({ length: 2000 }, (_, i) => identityOf(i));
    const facts = ids.map((id) => generateFacts(9, id));
    for (const f of facts) {
      const dc = KNOWN_DCS.find((d) => d.dc === f.dc);
      if (dc) assert.equal(f.country, dc.country, "dc is in its country");
      assert.match((f.network as { ip: string }).ip, dc ? new RegExp(`^10\\.${dc.net}\\.`) : /^10\.25[01]\./);
    }
    const unknown = facts.filter((f) => !KNOWN_DCS.some((d) => d.dc === f.dc)).length;
    assert.ok(unknown > 0 && unknown < 40, `a handful of unknown dcs (${unknown})`);
    assert.ok(facts.some((f) => f.role === "decommissioned"));
    assert.deepEqual(generateFacts(9, ids[5]), facts[5]);
    assert.notDeepEqual(generateFacts(10, ids[5]), facts[5]);

    const fleet = await startFleet({ servers: srv.url, nodes: 2, facts: { "sim-00002.example.net": { role: "special" } } });
    const client = new RpcClient({ nc, identity: "p.example.net" });
    client.start();
    try {
      assert.deepEqual((await client.call<Record<string, any>>("sim-00002.example.net", "rpcutil", "inventory")).data.facts, { role: "special" });
      assert.ok("dc" in (await client.call<Record<string, any>>("sim-00001.example.net", "rpcutil", "inventory")).data.facts);
    } finally {
      await client.close();
      await fleet.stop();
    }
  });

  it("--record writes RecordedInventory files without secrets", async () => {
    const dir = tmp();
    const jwt = ["e30", Buffer.from(JSON.stringify({ cht: "secret-token", chpwd: "pw", chu: "nats://b:4222", purpose: "choria_provisioning" })).toString("base64url"), "sig"].join(".");
    const fleet = await startFleet({ servers: srv.url, nodes: 3, recordDir: dir, provisioningJwt: jwt });
    await fleet.stop();
    assert.deepEqual(readdirSync(dir).sort(), fleet.identities.map((i) => `${i}.json`).sort());
    const r = JSON.parse(readFileSync(join(dir, `${fleet.identities[0]}.json`), "utf8")) as RecordedInventory;
    assert.equal(r.kind, "RecordedInventory");
    assert.equal(r.identity, fleet.identities[0]);
    assert.deepEqual(r.inventory.collectives, ["provisioning"]);
    assert.equal(r.csr?.cn, fleet.identities[0]);
    assert.deepEqual(r.jwt, { chu: "nats://b:4222", purpose: "choria_provisioning" });
    assert.ok(!readFileSync(join(dir, `${fleet.identities[0]}.json`), "utf8").includes("secret-token"));
  });

  it("CLI: provisions a small fleet, exits when done and writes the report", async () => {
    const dir = tmp();
    const reportFile = join(dir, "report.json");
    const factsFile = join(dir, "facts.yaml");
    writeFileSync(factsFile, "country: nl\ndc: ams1\nrole: web\n");
    const log = new LifecycleLog(nc);
    await nc.flush();
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "sim", "--broker", srv.url, "--nodes", "3", "--seed", "4", "--token", "tk", "--facts", factsFile, "--restart-delay", "20", "--report", reportFile, "--exit-when-done", "--progress"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = once(child, "exit");
    const client = new RpcClient({ nc, identity: "p.example.net" });
    client.start();
    const ca = await makeTestCa();
    try {
      // the CLI's nodes are subscribed before they announce themselves
      await log.next((e) => e.type === "startup" && e.event.component === "provision_mode_server", 15_000, 3);
      const ids = await client.discover({ timeoutMs: 2000 });
      assert.equal(ids.length, 3, stderr);
      for (const id of ids) {
        assert.equal((await client.call<Record<string, any>>(id, "rpcutil", "inventory")).data.facts.dc, "ams1");
        const csr = (await client.call<Record<string, any>>(id, "choria_provision", "gencsr", { token: "tk" })).data.csr;
        const r = await client.call(id, "choria_provision", "configure", configData(id, { certificate: await signCsr(ca, csr), ca: ca.pem, token: "tk" }));
        assert.equal(r.statuscode, 0);
        assert.equal((await client.call(id, "choria_provision", "restart", { token: "tk", splay: 1 })).statuscode, 0);
      }
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      const report = JSON.parse(readFileSync(reportFile, "utf8"));
      assert.equal(report.totals.provisioned, 3);
      assert.equal(report.nodes.length, 3);
      assert.ok(report.nodes.every((n: { certificate?: { issuer: string }; violations: unknown[] }) => n.certificate?.issuer === "CN=Sim Test CA" && n.violations.length === 0));
      assert.match(stderr, /3 provisioned/);
    } finally {
      await client.close();
      if (child.exitCode === null) child.kill("SIGTERM");
    }
  });

  it("CLI: SIGTERM stops it and still writes the report", async () => {
    const reportFile = join(tmp(), "r.json");
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "sim", "--broker", srv.url, "--nodes", "2", "--report", reportFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const up = new Promise<void>((r) => child.stderr.on("data", (b: Buffer) => ((stderr += b.toString()), /listening/.test(stderr) && r())));
    await up;
    child.kill("SIGTERM");
    const [code, signal] = await once(child, "exit");
    assert.equal(code, 0, `exit ${code} ${signal}: ${stderr}`);
    assert.equal(JSON.parse(readFileSync(reportFile, "utf8")).totals.nodes, 2);
  });
});
