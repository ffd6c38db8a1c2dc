/**
 * The recorder never fails a node. A node whose facts are nested 20,000 deep (JSON.stringify
 * overflows the stack on them) and one whose inventory is larger than record_limits.max_bytes are
 * provisioned like any other; their inventories are not written, their records carry a note, the
 * skip is counted, and the audit, /status and the node's detail still serve them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/transport/index.js";
import { generateFacts, nestedJson, startFleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { latestRecords, startTestDaemon } from "../helpers/daemon.js";

const SEED = 17;
const MAX_BYTES = 100_000;

test("facts 20,000 deep and an inventory over the size limit: the nodes are provisioned, the inventories not recorded but noted and counted", async () => {
  const srv = await startNatsServer();
  const work = mkdtempSync(join(tmpdir(), "record-limits-"));
  const recordDir = join(work, "inventories");
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, audit: { file: join(work, "audit.jsonl") }, record: recordDir, record_limits: { max_bytes: MAX_BYTES } });
  // about 300 kB of facts: over the limit, well within one NATS message
  const huge = Array.from({ length: 10_000 }, (_, i) => `package-${i}-1.0.0-1.el9.x86_64`);
  const fleet = await startFleet({
    servers: srv.url,
    nodes: 3,
    seed: SEED,
    restartDelayMs: 50,
    upgradable: false,
    facts: (id, i) => ({ ...generateFacts(SEED, id), ...(i === 0 ? { deep: nestedJson(20_000) } : i === 1 ? { packages: huge } : {}) }),
  });
  try {
    const [deep, large, plain] = fleet.identities;
    const configured = (r: DecisionRecord[]) => new Set(r.filter((x) => x.outcome === "configure").map((x) => x.identity));
    await d.waitFor((r) => configured(r).size === 3, 30_000, "all three nodes configured");
    const latest = latestRecords(d.records);

    assert.deepEqual(
      latest.get(deep!)?.warnings?.filter((w) => w.startsWith("facts")),
      ["facts too deep: inventory not recorded, nested more than 100 levels deep (record_limits.max_depth)"],
    );
    assert.deepEqual(
      latest.get(large!)?.warnings?.filter((w) => w.startsWith("facts")),
      [`facts too large: inventory not recorded, more than ${MAX_BYTES} bytes as JSON (record_limits.max_bytes)`],
    );
    assert.equal(latest.get(plain!)?.warnings, undefined);
    const metrics = await d.metrics.registry.metrics();
    assert.match(metrics, /choria_provisioner_record_skipped_total\{[^}]*reason="too_deep"[^}]*\} [1-9]/);
    assert.match(metrics, /choria_provisioner_record_skipped_total\{[^}]*reason="too_large"[^}]*\} [1-9]/);

    // the other writers of what came from these nodes: /status, the node's detail, the audit
    const status = await fetch(`${d.admin.url}/status`);
    assert.equal(status.status, 200);
    for (const id of [deep, large]) {
      const detail = await fetch(`${d.admin.url}/nodes/${id}`);
      assert.equal(detail.status, 200, `${id}: ${await detail.text()}`);
    }
    // the daemon's stop waits for the recorder's writes and closes the audit log
    await d.stop(5000);
    assert.deepEqual(readdirSync(recordDir), [`${plain}.json`], "only the ordinary node's inventory is recorded");
    const audit = readFileSync(join(work, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as DecisionRecord);
    for (const id of [deep, large, plain]) assert.ok(audit.some((r) => r.identity === id && r.outcome === "configure"), `${id} configured in the audit`);
    assert.ok(audit.some((r) => r.identity === deep && r.warnings?.some((w) => w.startsWith("facts too deep"))), "the note is in the audit");
  } finally {
    await fleet.stop();
    await d.stop(5000);
    await srv.stop();
  }
});
