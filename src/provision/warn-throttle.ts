/**
 * Repeated warnings as periodic summaries. The first warning of a kind in a window is logged as
 * it is; the rest of that window are counted and logged once at its end as one summary line with
 * the count and the last detail. 100k bad messages from a broken publisher then cost a few lines
 * a minute instead of one line each. Kinds are a small closed set (source/reason), never an
 * identity, so the table stays small. The same at info level serves routine lines that come in
 * floods (nodes nothing answers for).
 */
import type { Logger } from "pino";

interface Pending {
  count: number;
  fields: Record<string, unknown>;
  msg: string;
}

export class WarnThrottle {
  private readonly seen = new Map<string, Pending | null>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Pick<Logger, "warn" | "info">,
    readonly windowMs = 10_000,
    private readonly level: "warn" | "info" = "warn",
  ) {
    this.timer = setInterval(() => this.flush(), windowMs);
    this.timer.unref();
  }

  /** logs now if `kind` was quiet this window, else counts it for the window's summary */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const p = this.seen.get(kind);
    if (p === undefined) {
      this.seen.set(kind, null);
      this.log[this.level](fields, msg);
    } else if (p === null) this.seen.set(kind, { count: 1, fields, msg });
    else {
      p.count++;
      p.fields = fields;
      p.msg = msg;
    }
  }

  /** ends the window: one summary line per kind that repeated */
  flush(): void {
    for (const [kind, p] of this.seen) {
      if (p) this.log[this.level]({ ...p.fields, kind, repeated: p.count, windowMs: this.windowMs }, `${p.count} more like this in the last ${Math.round(this.windowMs / 1000)}s, the latest: ${p.msg}`);
    }
    this.seen.clear();
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
