/**
 * The part our own metric classes share: a registry entry whose children are made once per
 * label set and kept, so an observation on the hot path neither hashes labels nor allocates
 * (prom-client's own metrics do both on every call, even through a child). A subclass says
 * what a series holds, how its child observes, and how the series are exported.
 */
import type { MetricValue, Registry } from "prom-client";

export interface ObserverChild {
  observe(value: number): void;
}

export type ExportedValue = MetricValue<string> & { metricName: string };

export abstract class BoundMetric<L extends string, S extends { labels: Record<string, string> }> {
  readonly aggregator = "sum";
  protected readonly series = new Map<string, S>();
  private readonly children = new Map<string, ObserverChild>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  protected register(registry: Registry): void {
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /** the child for these label values, made once */
  labels(...values: string[]): ObserverChild {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join("\u0000");
    let child = this.children.get(key);
    if (child) return child;
    const series = this.newSeries(Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])));
    this.series.set(key, series);
    child = this.childOf(series);
    this.children.set(key, child);
    return child;
  }

  protected abstract newSeries(labels: Record<string, string>): S;
  /** a metric never throws on the provisioning path: the child drops a value that is not a finite number */
  protected abstract childOf(series: S): ObserverChild;
}
