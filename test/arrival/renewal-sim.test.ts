/**
 * Certificate renewal end to end on the simulator: a real provisioning nats-server, a real home
 * nats-server, the daemon with the built-in CA, its ledger and arrival tracking, and a fleet whose
 * provisioned nodes answer `choria_provision#reprovision` at home (signed requests only, token
 * checked) and go back to provisioning. Certificates last a day and the window is a day less
 * 5 s: each certificate is due 5 s after it was issued, so every node is renewed again and again,
 * and the token bucket is what spreads it. Halfway, the daemon is replaced by a new one on the
 * same ledger, which renews the rest: the due set comes from the ledger, not from memory.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateLedger, normaliseSerial } from "../../src/ca/index.js";
import type { ConfigFile } from "../../src/config/index.js";
import { startFleet } from "../../src/sim/index.js";
import type { RenewRecord } from "../../src/types/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { Waiters } from "../helpers/waiters.js";
import { TOKEN, cleanup, clientCertificate, nats, runCleanup, writeHomePolicy } from "./helpers.js";

after(runCleanup);

const N = 12;
const RATE_PER_S = 1;
const BURST = 2;

/** the requests one daemon's token bucket let through must fit it: in any span, at most burst + rate x span */
function assertWithinBucket(asked: number[], who: string): void {
  const t = [...asked].sort((a, b) => a - b);
  for (let i = 0; i < t.length; i++) for (let j = i; j < t.length; j++) assert.ok(j - i + 1 <= BURST + (RATE_PER_S * (t[j]! - t[i]!)) / 1000 + 1e-6, `${who}: ${j - i + 1} requests within ${t[j]! - t[i]!} ms, more than a bucket of ${BURST} at ${RATE_PER_S}/s allows`);
}

test("every node is asked to renew at home, provisioned again with a new certificate, at the bucket's pace, across a restart of the daemon", async () => {
  const [prov, home] = await Promise.all([nats(), nats()]);
  const work = mkdtempSync(join(tmpdir(), "cp-renew-sim-"));
  const caDir = await makeBuiltinCa();
  const caller = clientCertificate("renewer.mcollective");
  const cfg = (n: number): ConfigFile => ({
    ...writeHomePolicy({ version: "1", sets: { home: [home.url] }, defaultSet: "home", validityDays: 1 }),
    ca: { dir: caDir },
    audit: { file: join(work, `audit-${n}.jsonl`) },
    arrival: { deadline: "30s", homes: [{ name: "home", broker: home.url }] },
    rollout: { trust_initial: true },
    renewal: { window: `${86_400 - 5}s`, rate: `${RATE_PER_S}/s`, burst: BURST, retry_after: "10m", interval: "1s", timeout: "5s", ...caller },
  });
  const records: RenewRecord[][] = [[], []];
  const waiters = new Waiters();
  const start = async (n: number): Promise<TestDaemon> => {
    const d = await startTestDaemon(prov.url, cfg(n), {}, { CHORIA_PROVISIONER_TOKEN: TOKEN });
    daemons.push(d);
    cleanup.push(() => d.stop(5000));
    d.renewals!.on("renew", (r) => {
      records[n]!.push(r);
      waiters.notify();
    });
    return d;
  };
  const renewed = () => new Set(records.flat().filter((r) => r.result === "renewed").map((r) => r.identity));
  let fleetRef: Awaited<ReturnType<typeof startFleet>> | undefined;
  const daemons: TestDaemon[] = [];
  const until = (pred: () => boolean, ms: number, what: string) =>
    waiters.until(pred, () => undefined, ms, () => {
      const missing = fleetRef?.identities.filter((id) => !renewed().has(id)) ?? [];
      const nodes = fleetRef?.report().nodes.filter((n) => missing.includes(n.identity)).map((n) => ({ id: n.identity, mode: n.mode, home: n.home, v: n.violations, cfg: n.configureCount }));
      const recs = daemons.map((d) => d.records.filter((r) => missing.includes(r.identity)).map((r) => `${r.identity}:${r.outcome}:${r.reason}`));
      return new Error(`timed out waiting for ${what}: ${JSON.stringify({ missing, nodes, recs, renew: records.map((rs) => rs.filter((r) => missing.includes(r.identity))) })}`);
    });

  const a = await start(0);
  const fleet = await startFleet({ servers: prov.url, nodes: N, seed: 21, restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
  cleanup.push(() => fleet.stop());
  fleetRef = fleet;

  // a third of the fleet renewed by the first daemon, then it stops and a new one takes over
  await until(() => renewed().size >= N / 3, 120_000, `${N / 3} nodes renewed by the first daemon`);
  await a.stop(5000);
  const b = await start(1);
  await until(() => renewed().size === N, 60_000, "every node renewed");
  const metrics = await (await fetch(`${b.admin.url}/metrics`)).text();
  const status = (await (await fetch(`${b.admin.url}/status`)).json()) as { renewal?: { windowMs: number } };
  await b.stop(5000);
  const count = (result: string, reason = "") => Number(new RegExp(`^choria_provisioner_renewals_total\\{site="default",result="${result}",reason="${reason}"\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? -1);
  const mine = records[1]!;
  // what the metrics counted up to the scrape: at least as many as the records held then, no more than at the end
  assert.ok(count("requested") >= 1 && count("requested") <= mine.filter((r) => r.result === "requested").length, `requested: ${count("requested")}`);
  assert.ok(count("ok") >= 1 && count("ok") <= mine.filter((r) => r.result === "renewed").length, `ok: ${count("ok")}`);
  assert.equal(count("failed", "refused"), 0);
  assert.equal(status.renewal?.windowMs, (86_400 - 5) * 1000, "/status shows renewal");

  const report = fleet.report();
  assert.equal(report.totals.reprovisions, records.flat().filter((r) => r.result === "requested").length, "every accepted request sent a node back to provisioning");
  const bad = Object.keys(report.totals.violationsByKind).filter((k) => k.startsWith("home_") || k === "wrong_token");
  assert.deepEqual(bad, [], `requests at home were signed, named their caller and carried the token: ${JSON.stringify(report.totals.violationsByKind)}`);
  const ledger = CertificateLedger.open(join(caDir, "ledger.sqlite"));
  try {
    for (const node of report.nodes) {
      const certs = ledger.byIdentity(node.identity);
      assert.ok(certs.length >= 2, `${node.identity}: the ledger holds its first certificate and its renewal (${certs.length})`);
      // the certificate the node holds is one the ledger recorded for it, and not its first
      const held = normaliseSerial(node.certificate!.serial);
      assert.ok(certs.some((c) => c.serial === held), `${node.identity} holds ${held}, which the ledger has`);
      assert.notEqual(held, certs[0]!.serial, `${node.identity} no longer holds its first certificate`);
      const r = records.flat().find((x) => x.identity === node.identity && x.result === "renewed")!;
      assert.ok(certs.find((c) => c.serial === r.serial)!.issuedAt < certs.find((c) => c.serial === r.newSerial)!.issuedAt, "renewed with a newer certificate");
    }
  } finally {
    ledger.close();
  }
  // the second daemon asked nodes the first had asked and not seen renewed: from the ledger
  assert.ok(records[1]!.some((r) => r.result === "requested"), "the new daemon renewed from the ledger");
  // each node's request is one record (requested or failed); renewed follows it and is not a request
  for (const [n, rs] of records.entries()) assertWithinBucket(rs.filter((r) => r.result !== "renewed").map((r) => Date.parse(r.askedAt)), `daemon ${n}`);

  // audited, counted, and the token is in neither
  const audit = [0, 1].map((n) => readFileSync(join(work, `audit-${n}.jsonl`), "utf8")).join("");
  assert.ok(!audit.includes(TOKEN), "the provisioning token is not in the audit");
  const lines = audit.trim().split("\n").map((l) => JSON.parse(l) as { kind?: string; result?: string });
  assert.equal(lines.filter((l) => l.kind === "renew" && l.result === "renewed").length, records.flat().filter((r) => r.result === "renewed").length);
});
