/**
 * rpc_time's summary: quantiles over a sliding window (slices that age out), _sum and _count
 * over all time, in prom-client's exposition like its own summaries.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { SlidingSummary } from "../../src/metrics/sliding-summary.js";

function make(now: () => number) {
  const registry = new Registry();
  const s = new SlidingSummary({ name: "t_rpc_time", help: "h", labelNames: ["site", "rpc"], percentiles: [0.5, 0.99], maxAgeSeconds: 600, ageBuckets: 5, registers: [registry], now });
  return { registry, s };
}

function sample(text: string, line: string): number {
  const m = text.split("\n").find((l) => l.startsWith(line + " "));
  assert.ok(m, `no line ${line} in\n${text}`);
  return Number(m.slice(line.length + 1));
}

test("quantiles, sum and count per label set, in the registry's exposition", async () => {
  let t = 1_000_000;
  const { registry, s } = make(() => t);
  const a = s.labels("dc1", "rpcutil#inventory");
  for (let i = 1; i <= 100; i++) a.observe(i / 100);
  s.labels("dc1", "choria_provision#gencsr").observe(2);
  t += 1000;
  const text = await registry.metrics();
  assert.match(text, /# TYPE t_rpc_time summary/);
  assert.ok(Math.abs(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="rpcutil#inventory"}') - 0.5) < 0.02);
  assert.ok(sample(text, 't_rpc_time{quantile="0.99",site="dc1",rpc="rpcutil#inventory"}') >= 0.98);
  assert.ok(Math.abs(sample(text, 't_rpc_time_sum{site="dc1",rpc="rpcutil#inventory"}') - 50.5) < 1e-9);
  assert.equal(sample(text, 't_rpc_time_count{site="dc1",rpc="rpcutil#inventory"}'), 100);
  assert.equal(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="choria_provision#gencsr"}'), 2);
});

test("observations leave the quantiles once their slice is older than the window, but stay in sum and count", async () => {
  let t = 0;
  const { registry, s } = make(() => t);
  const a = s.labels("dc1", "x");
  for (let i = 0; i < 50; i++) a.observe(1);
  t += 4 * 60_000; // still inside the 10-minute window
  for (let i = 0; i < 50; i++) a.observe(9);
  let text = await registry.metrics();
  assert.ok(sample(text, 't_rpc_time{quantile="0.99",site="dc1",rpc="x"}') > 8, "both slices count");
  assert.ok(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="x"}') < 9);
  t += 7 * 60_000; // the first slice (0–2 min) is now more than 10 minutes old; the 9s are not
  text = await registry.metrics();
  assert.equal(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="x"}'), 9, "only the later observations remain");
  assert.equal(sample(text, 't_rpc_time_count{site="dc1",rpc="x"}'), 100);
  t += 60 * 60_000; // a long quiet hour: every slice has aged out
  text = await registry.metrics();
  assert.equal(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="x"}'), 0);
  a.observe(3);
  text = await registry.metrics();
  assert.equal(sample(text, 't_rpc_time{quantile="0.5",site="dc1",rpc="x"}'), 3);
});

test("bad label counts, reserved labels and non-finite values are refused", () => {
  const { s } = make(() => 0);
  assert.throws(() => s.labels("only-one"), /expected 2 label values/);
  assert.throws(() => s.labels("a", "b").observe(Number.NaN), /not a finite number/);
  assert.throws(() => new SlidingSummary({ name: "q", help: "h", labelNames: ["quantile"], percentiles: [0.5], maxAgeSeconds: 1, ageBuckets: 1 }), /reserved/);
});
