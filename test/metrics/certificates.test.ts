import { test } from "node:test";
import assert from "node:assert/strict";
import { createMetrics } from "../../src/metrics/metrics.js";

test("certificate expiry gauges read the ledger's summary at scrape time, and are absent without one", async () => {
  const m = createMetrics("dc1", { defaultMetrics: false });
  const text0 = await m.registry.metrics();
  assert.doesNotMatch(text0, /choria_provisioner_certificates_expiring\{/);
  assert.doesNotMatch(text0, /choria_provisioner_certificate_earliest_not_after_seconds\{/);
  let summary: { within7d: number; within30d: number; earliestNotAfter?: number } = { within7d: 3, within30d: 40, earliestNotAfter: 1_900_000_000_500 };
  m.certificateExpiry = () => summary;
  const text = await m.registry.metrics();
  assert.match(text, /choria_provisioner_certificates_expiring\{site="dc1",within="7d"\} 3\n/);
  assert.match(text, /choria_provisioner_certificates_expiring\{site="dc1",within="30d"\} 40\n/);
  assert.match(text, /choria_provisioner_certificate_earliest_not_after_seconds\{site="dc1"\} 1900000000\n/);
  summary = { within7d: 0, within30d: 0 };
  const later = await m.registry.metrics();
  assert.match(later, /within="7d"\} 0\n/);
  assert.doesNotMatch(later, /choria_provisioner_certificate_earliest_not_after_seconds\{/, "no certificate left: no earliest notAfter");
});
