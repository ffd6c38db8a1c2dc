/**
 * A Prometheus histogram whose children are bound once: observe() is a bucket scan and three
 * additions. prom-client's Histogram converts, validates and hashes the label set on every
 * observe, even through a child from labels(), and the daemon observes six or more times per
 * node (each RPC, the policy evaluation, the signing, the node's duration). The exposition is
 * prom-client's: `_bucket` series with `le` first and cumulative counts, `+Inf`, `_sum`, `_count`.
 */
import type { Registry } from "prom-client";
import { BoundMetric, type ExportedValue, type ObserverChild } from "./bound-metric.js";

interface Series {
  labels: Record<string, string>;
  /** per bucket, not cumulative; the last slot counts values above every bound */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class BucketHistogram<L extends string> extends BoundMetric<L, Series> {
  readonly type = "histogram";
  private readonly bounds: Float64Array;

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) throw new Error(`${name}: bucket bounds must be finite and distinct`);
    this.bounds = Float64Array.from(sorted);
    this.register(registry);
  }

  protected newSeries(labels: Record<string, string>): Series {
    return { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  protected childOf(series: Series): ObserverChild {
    const bounds = this.bounds;
    return {
      observe(value: number) {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        series.counts[i]!++;
        series.sum += value;
        series.count++;
      },
    };
  }

  /** what prom-client's registry reads at a scrape */
  get(): { name: string; help: string; type: "histogram"; aggregator: "sum"; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
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
