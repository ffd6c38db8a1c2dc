/**
 * A Prometheus summary with only `_sum` and `_count`, as the reference provisioner exports
 * `rpc_time` and `helper_time` (a Go summary with no objectives). prom-client's Summary feeds
 * every observation into one t-digest per age bucket even when no quantile is asked for: with
 * four RPCs per node that was a few percent of the daemon's main thread in `npm run bench`. The
 * distribution lives in a histogram beside it (`rpc_seconds`), which Prometheus can aggregate
 * across sites and HA instances, which summary quantiles cannot.
 */
import type { MetricValue, Registry } from "prom-client";

export interface SumCountChild {
  observe(value: number): void;
}

interface Series {
  labels: Record<string, string>;
  sum: number;
  count: number;
}

export class SumCountSummary<L extends string> {
  readonly type = "summary";
  readonly aggregator = "sum";
  private readonly series = new Map<string, Series>();
  private readonly children = new Map<string, SumCountChild>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly L[], registry: Registry) {
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /** the child for these label values, made once: the hot path does no hashing or allocation */
  labels(...values: string[]): SumCountChild {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join("\u0000");
    let child = this.children.get(key);
    if (child) return child;
    const series: Series = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])), sum: 0, count: 0 };
    this.series.set(key, series);
    child = {
      observe(value: number) {
        if (!Number.isFinite(value)) return;
        series.sum += value;
        series.count++;
      },
    };
    this.children.set(key, child);
    return child;
  }

  /** what prom-client's registry reads at a scrape */
  get(): { name: string; help: string; type: "summary"; aggregator: "sum"; values: Array<MetricValue<string> & { metricName: string }> } {
    const values: Array<MetricValue<string> & { metricName: string }> = [];
    for (const s of this.series.values()) {
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: "summary", aggregator: "sum", values };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.sum = 0;
      s.count = 0;
    }
  }
}
