/** "500ms" | "10s" | "5m" | "1h" | milliseconds as a number -> milliseconds */
export function parseDuration(v: string | number | undefined, fallbackMs: number): number {
  if (v === undefined) return fallbackMs;
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(v)} (use e.g. 500ms, 10s, 5m, 1h)`);
  const n = Number(m[1]);
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"]);
}
