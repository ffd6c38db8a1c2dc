/** Counters exist at 0 from start-up, so `rate(x[15m]) == 0` alerts fire on an idle daemon. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createMetrics } from "../../src/metrics/metrics.js";

test("every counter labelled by site alone is exported at 0 before anything happens", async () => {
  const m = createMetrics("ams1", { defaultMetrics: false });
  const text = await m.registry.metrics();
  const counters = (await m.registry.getMetricsAsJSON()).filter((x) => String(x.type) === "counter" && x.name.startsWith("choria_provisioner_"));
  const siteOnly = counters.filter((c) => {
    const names = (m.registry.getSingleMetric(c.name) as unknown as { labelNames: string[] }).labelNames;
    return names.length === 1 && names[0] === "site";
  });
  assert.ok(siteOnly.length >= 10, `only ${siteOnly.length} site-only counters`);
  for (const c of siteOnly) assert.match(text, new RegExp(`^${c.name}\\{site="ams1"\\} 0$`, "m"), `${c.name} is not exported at 0`);
  for (const result of ["ok", "error"]) assert.match(text, new RegExp(`^choria_provisioner_policy_reloads\\{site="ams1",result="${result}"\\} 0$`, "m"));
});

test("the Grafana dashboard charts only metrics the daemon exports, the helper's, conflicts and the signer included", async () => {
  const { readFileSync } = await import("node:fs");
  const dash = JSON.parse(readFileSync(new URL("../../contrib/grafana/choria-provisioner-dashboard.json", import.meta.url), "utf8")) as { panels: Array<{ id: number; targets?: Array<{ expr: string }> }> };
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const used = new Set(dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/choria_provisioner_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, "")))));
  for (const name of ["choria_provisioner_helper_seconds", "choria_provisioner_helper_errors", "choria_provisioner_conflicts_total", "choria_provisioner_signer_up"]) assert.ok(used.has(name), `no panel for ${name}`);
  const exported = new Set((await createMetrics("x", { defaultMetrics: false }).registry.getMetricsAsJSON()).map((x) => x.name));
  const unknown = [...used].filter((n) => !exported.has(n));
  assert.deepEqual(unknown, [], "dashboard queries metrics the daemon does not export");
  // no summary exports quantile series (rpc_time and helper_time have _sum and _count only)
  const quantileLabel = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).filter((e) => /quantile\s*=/.test(e));
  assert.deepEqual(quantileLabel, [], "dashboard selects quantile series no metric exports");
});

test("rpc_time is the reference's summary (_sum and _count, no quantiles) and rpc_seconds holds the same observations as a histogram", async () => {
  const m = createMetrics("ams1", { defaultMetrics: false });
  for (const s of [0.002, 0.004, 0.03]) {
    m.rpcTime.labels("ams1", "rpcutil#inventory").observe(s);
    m.rpcSeconds.labels("ams1", "rpcutil#inventory").observe(s);
  }
  m.rpcTime.labels("ams1", "rpcutil#inventory").observe(Number.NaN);
  const text = await m.registry.metrics();
  assert.match(text, /^# TYPE choria_provisioner_rpc_time summary$/m);
  assert.match(text, /^choria_provisioner_rpc_time_count\{site="ams1",rpc="rpcutil#inventory"\} 3$/m);
  const sum = Number(/^choria_provisioner_rpc_time_sum\{site="ams1",rpc="rpcutil#inventory"\} (\S+)$/m.exec(text)?.[1]);
  assert.ok(Math.abs(sum - 0.036) < 1e-9, `sum ${sum}`);
  assert.doesNotMatch(text, /choria_provisioner_rpc_time\{.*quantile/);
  assert.match(text, /^choria_provisioner_rpc_seconds_bucket\{le="0.005",site="ams1",rpc="rpcutil#inventory"\} 2$/m);
  assert.match(text, /^choria_provisioner_rpc_seconds_count\{site="ams1",rpc="rpcutil#inventory"\} 3$/m);
  assert.throws(() => m.rpcTime.labels("ams1"), /2 label values expected/);
  // JSON export (the admin API's /status reads it) carries the series too
  const json = (await m.registry.getMetricsAsJSON()).find((x) => x.name === "choria_provisioner_rpc_time");
  assert.equal(json?.values.length, 2);
});
