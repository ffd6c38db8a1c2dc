/**
 * A Prometheus summary with only `_sum` and `_count`, as the reference provisioner exports
 * `rpc_time` and `helper_time` (a Go summary with no objectives). prom-client's Summary feeds
 * every observation into one t-digest per age bucket even when no quantile is asked for: with
 * four RPCs per node that was a few percent of the daemon's main thread in `npm run bench`. The
 * distribution lives in a histogram beside it (`rpc_seconds`), which Prometheus can aggregate
 * across sites and HA instances, which summary quantiles cannot.
 */
import type { Registry } from "prom-client";
import { BoundMetric, type ExportedValue, type ObserverChild } from "./bound-metric.js";

interface Series {
  labels: Record<string, string>;
  sum: number;
  count: number;
}

export class SumCountSummary<L extends string> extends BoundMetric<L, Series> {
  readonly type = "summary";

  constructor(name: string, help: string, labelNames: readonly L[], registry: Registry) {
    super(name, help, labelNames);
    this.register(registry);
  }

  protected newSeries(labels: Record<string, string>): Series {
    return { labels, sum: 0, count: 0 };
  }

  protected childOf(series: Series): ObserverChild {
    return {
      observe(value: number) {
        if (!Number.isFinite(value)) return;
        series.sum += value;
        series.count++;
      },
    };
  }

  /** what prom-client's registry reads at a scrape */
  get(): { name: string; help: string; type: "summary"; aggregator: "sum"; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
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
