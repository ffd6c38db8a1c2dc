/**
 * A Prometheus summary whose quantiles cover a sliding window (e.g. the last 10 minutes in 5
 * slices), registered in a prom-client Registry like any of its metrics.
 *
 * Why not prom-client's Summary: with maxAgeSeconds/ageBuckets it pushes every observation into
 * every slice's t-digest (5 inserts for 5 slices; before the first rotation all slices are even
 * the same digest, so each value goes into it 5 times), and `labels()` validates and builds new
 * closures on each call. Observed 4 times per provisioned node, that was about 3% of the
 * daemon's main thread in `npm run bench`. Here an observation goes into the current slice only
 * and a series' labels are looked up once; a scrape merges the live slices' centroids (same
 * t-digest library, prom-client's own dependency), which is cheap at scrape rates.
 */
import { TDigest } from "tdigest";
import type { Registry } from "prom-client";

export interface SlidingSummaryOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  percentiles: readonly number[];
  /** window the quantiles cover */
  maxAgeSeconds: number;
  /** slices the window moves by */
  ageBuckets: number;
  registers?: Registry[];
  /** clock in ms, for tests */
  now?: () => number;
}

interface Series {
  labels: Record<string, string>;
  count: number;
  sum: number;
  /** slices[current] takes observations; the others are the window's older slices */
  slices: TDigest[];
  current: number;
  sliceEndsAt: number;
  child: { observe(value: number): void };
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export class SlidingSummary<L extends string = string> {
  readonly name: string;
  readonly help: string;
  readonly type = "summary";
  readonly aggregator = "sum";
  private readonly o: SlidingSummaryOptions<L>;
  private readonly series = new Map<string, Series>();
  private readonly sliceMs: number;
  private readonly now: () => number;

  constructor(o: SlidingSummaryOptions<L>) {
    if (!(o.maxAgeSeconds > 0) || !Number.isInteger(o.ageBuckets) || o.ageBuckets < 1) throw new RangeError(`${o.name}: maxAgeSeconds must be > 0 and ageBuckets a positive integer`);
    if (o.labelNames.includes("quantile" as L)) throw new Error(`${o.name}: quantile is a reserved label name`);
    this.name = o.name;
    this.help = o.help;
    this.o = o;
    this.sliceMs = (o.maxAgeSeconds * 1000) / o.ageBuckets;
    this.now = o.now ?? Date.now;
    for (const r of o.registers ?? []) r.registerMetric(this as never);
  }

  /** the series for these label values, in labelNames order */
  labels(...values: string[]): { observe(value: number): void } {
    const key = values.join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      if (values.length !== this.o.labelNames.length) throw new Error(`${this.name}: expected ${this.o.labelNames.length} label values, got ${values.length}`);
      const labels: Record<string, string> = {};
      this.o.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      const series: Series = {
        labels,
        count: 0,
        sum: 0,
        slices: Array.from({ length: this.o.ageBuckets }, () => new TDigest()),
        current: 0,
        sliceEndsAt: this.now() + this.sliceMs,
        child: { observe: (v: number) => this.observeSeries(series, v) },
      };
      s = series;
      this.series.set(key, s);
    }
    return s.child;
  }

  private observeSeries(s: Series, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: value is not a finite number: ${value}`);
    this.rotate(s);
    s.slices[s.current]!.push(value);
    s.count++;
    s.sum += value;
  }

  // The slice whose time is up becomes the oldest: emptied and made current, so the window
  // always holds the last ageBuckets slices.
  private rotate(s: Series): void {
    const now = this.now();
    if (now < s.sliceEndsAt) return;
    const ended = Math.floor((now - s.sliceEndsAt) / this.sliceMs) + 1;
    for (let i = 0; i < Math.min(ended, this.o.ageBuckets); i++) {
      s.current = (s.current + 1) % this.o.ageBuckets;
      s.slices[s.current] = new TDigest();
    }
    s.sliceEndsAt += ended * this.sliceMs;
  }

  private quantiles(s: Series): number[] {
    this.rotate(s);
    const merged = new TDigest();
    for (const d of s.slices) if (d.size() > 0) merged.push_centroid(d.toArray());
    if (merged.size() === 0) return this.o.percentiles.map(() => 0);
    merged.compress();
    return this.o.percentiles.map((p) => merged.percentile(p) ?? 0);
  }

  /** what prom-client's Registry reads on a scrape */
  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      const q = this.quantiles(s);
      this.o.percentiles.forEach((p, i) => values.push({ labels: { quantile: p, ...s.labels }, value: q[i]! }));
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.count = 0;
      s.sum = 0;
      s.slices = s.slices.map(() => new TDigest());
    }
  }
}
