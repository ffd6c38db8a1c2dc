/**
 * The audit file sink: a configure request's line is in the file when configuring() resolves
 * (a daemon killed right after cannot lose it), while ordinary records stay buffered by the
 * stream; a sink whose file cannot be written still resolves, and reports the error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuditSink } from "../../src/provision/audit.js";
import type { ConfiguringRecord } from "../../src/types/index.js";

const line = (identity: string, attempt = 1): ConfiguringRecord => ({ kind: "configuring", identity, time: new Date().toISOString(), attempt, decision: { time: new Date().toISOString() } });

test("configuring() resolves once the file holds the line", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "audit-")), "a", "audit.jsonl");
  const sink = createAuditSink({ file });
  try {
    for (let i = 0; i < 50; i++) {
      await sink.configuring(line(`n${i}.example.net`));
      // read synchronously, before any other turn of the event loop could write it
      const lines = readFileSync(file, "utf8").split("\n");
      assert.equal(lines.pop(), "", "the line is complete");
      assert.equal(lines.length, i + 1);
      assert.equal(JSON.parse(lines.at(-1)!).identity, `n${i}.example.net`);
    }
  } finally {
    await sink.close();
  }
});

test("configuring() resolves when the file cannot be written, and the error is reported", async () => {
  const errors: Error[] = [];
  // a directory where the file should be: opening it fails
  const dir = mkdtempSync(join(tmpdir(), "audit-"));
  const sink = createAuditSink({ file: dir, onError: (e) => errors.push(e) });
  await sink.configuring(line("n.example.net"));
  await sink.close();
  assert.ok(errors.length > 0);
});

test("without a file the line is published and configuring() resolves at once", async () => {
  const published: string[] = [];
  const sink = createAuditSink({ subject: "audit", publish: (_s, d) => published.push(d) });
  await sink.configuring(line("n.example.net", 2));
  assert.deepEqual(published.map((p) => JSON.parse(p).attempt), [2]);
  await sink.close();
});
