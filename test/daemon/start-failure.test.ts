/**
 * A start that fails part-way closes what it had opened (daemon/start.ts's closers): here the
 * audit log's file, which the HA and admin-endpoint failures used to leave open.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { resolveSettings, type ConfigFile } from "../../src/config/index.js";
import { startDaemon } from "../../src/daemon/start.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { REPO } from "../helpers/daemon.js";

let plain: LocalNatsServer;
let jetstream: LocalNatsServer;
let busy: Server;
let busyPort: number;

before(async () => {
  [plain, jetstream] = await Promise.all([startNatsServer(), startNatsServer({ jetstream: true })]);
  busy = createServer();
  busy.listen(0, "127.0.0.1");
  await once(busy, "listening");
  busyPort = (busy.address() as { port: number }).port;
});

after(async () => {
  busy.close();
  await Promise.all([plain.stop(), jetstream.stop()]);
});

function openFds(file: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

/** the stream closes its fd just after end() calls back; nothing else tells when */
async function auditFileClosed(file: string, withinMs = 5000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (openFds(file) > 0) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

async function failedStart(broker: string, cfg: ConfigFile, expected: RegExp): Promise<void> {
  const audit = join(mkdtempSync(join(tmpdir(), "cp-start-")), "audit.jsonl");
  const s = resolveSettings({ broker, identity: "provisioner.start", policies: join(REPO, "policies"), features: { pki: false }, audit: { file: audit }, watch: false, ...cfg }, {});
  await assert.rejects(startDaemon(s, { log: pino({ level: "silent" }) }), expected);
  assert.ok(await auditFileClosed(audit), "the audit log opened before the failure is closed");
}

test("leader election on a broker without JetStream: the start fails and closes the audit log", async () => {
  await failedStart(plain.url, { leader_election: true, admin: { listen: "127.0.0.1:0" } }, /cannot start leader election/);
});

test("admin endpoint on a port in use: the start fails and closes the audit log", async () => {
  await failedStart(jetstream.url, { leader_election: true, admin: { listen: `127.0.0.1:${busyPort}` } }, /cannot start the admin endpoint/);
});
