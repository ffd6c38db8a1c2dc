/**
 * A Prometheus histogram whose children are bound once: observe() is a bucket scan and three
 * additions. prom-client's Histogram converts, validates and hashes the label set on every
 * observe, even through a child from labels(), and the daemon observes six or more times per
 * node (each RPC, the policy evaluation, the signing, the node's duration). The exposition is
 * prom-client's: `_bucket` series with `le` first and cumulative counts, `+Inf`, `_sum`, `_count`.
 */
import type { MetricValue, Registry } from "prom-client";

export interface HistogramChild {
  observe(value: number): void;
}

interface Series {
  labels: Record<string, string>;
  /** per bucket, not cumulative; the last slot counts values above every bound */
  counts: Float64Array;
  sum: number;
  count: number;
}

type Exported = MetricValue<string> & { metricName: string };

export class BucketHistogram<L extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, Series>();
  private readonly children = new Map<string, HistogramChild>();
  private readonly bounds: Float64Array;

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly L[], buckets: readonly number[], registry: Registry) {
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) throw new Error(`${name}: bucket bounds must be finite and distinct`);
    this.bounds = Float64Array.from(sorted);
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /** the child for these label values, made once */
  labels(...values: string[]): HistogramChild {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join("\u0000");
    let child = this.children.get(key);
    if (child) return child;
    const series: Series = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])), counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
    this.series.set(key, series);
    const bounds = this.bounds;
    child = {
      // a metric never throws on the provisioning path: a value that is not a number is dropped
      observe(value: number) {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        series.counts[i]!++;
        series.sum += value;
        series.count++;
      },
    };
    this.children.set(key, child);
    return child;
  }

  /** what prom-client's registry reads at a scrape */
  get(): { name: string; help: string; type: "histogram"; aggregator: "sum"; values: Exported[] } {
    const values: Exported[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ metricName: bucket, labels: { le: this.bounds[i]!, ...s.labels }, value: acc });
      }
      values.push({ metricName: bucket, labels: { le: "+Inf", ...s.labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: "histogram", aggregator: "sum", values };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
