/** The bound-once histogram exports exactly what prom-client's Histogram exports for the same observations. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Histogram, Registry } from "prom-client";
import { BucketHistogram } from "../../src/metrics/bucket-histogram.js";

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1];

test("same exposition text as prom-client's Histogram, bounds inclusive, values above every bound only in +Inf", async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({ name: "x_seconds", help: "h", labelNames: ["site", "rpc"], buckets: BUCKETS, registers: [theirs] });
  const b = new BucketHistogram("x_seconds", "h", ["site", "rpc"], BUCKETS, ours);
  const values = [0, 0.001, 0.0011, 0.005, 0.0099, 0.01, 0.5, 1, 1.0001, 7, 0.0005];
  for (const [i, v] of values.entries()) {
    const labels = ["ams1", i % 3 === 0 ? "rpcutil#inventory" : "choria_provision#gencsr"] as const;
    h.labels(...labels).observe(v);
    b.labels(...labels).observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  // the JSON (the admin API reads it) too, but for prom-client's exemplar slots, which we never fill
  const noExemplars = (j: unknown) => JSON.parse(JSON.stringify(j, (k, v: unknown) => (k === "exemplar" ? undefined : v))) as unknown;
  assert.deepEqual(noExemplars(await ours.getMetricsAsJSON()), noExemplars(await theirs.getMetricsAsJSON()));
});

test("a value that is not a finite number is dropped, not thrown; reset zeroes every series; a wrong label count is refused", async () => {
  const reg = new Registry();
  const b = new BucketHistogram("y_seconds", "h", ["site"], BUCKETS, reg);
  const c = b.labels("ams1");
  c.observe(Number.NaN);
  c.observe(Number.POSITIVE_INFINITY);
  c.observe(0.002);
  let text = await reg.metrics();
  assert.match(text, /^y_seconds_count\{site="ams1"\} 1$/m);
  assert.match(text, /^y_seconds_bucket\{le="0.005",site="ams1"\} 1$/m);
  assert.match(text, /^y_seconds_bucket\{le="0.001",site="ams1"\} 0$/m);
  b.reset();
  text = await reg.metrics();
  assert.match(text, /^y_seconds_count\{site="ams1"\} 0$/m);
  assert.match(text, /^y_seconds_bucket\{le="\+Inf",site="ams1"\} 0$/m);
  assert.equal(b.labels("ams1"), c, "the child is made once");
  assert.throws(() => b.labels("ams1", "extra"), /1 label values expected, got 2/);
});
