/**
 * "500ms" | "10s" | "5m" | "1h" | "30d" | "2w" | "1y" | milliseconds as a number -> milliseconds.
 * d, w and y are there because Choria's own duration parser has them and server_jwt_validity
 * is written "1y" in reference configurations; y is 365 days, as there.
 */
export function parseDuration(v: string | number | undefined, fallbackMs?: number): number {
  if (v === undefined) {
    if (fallbackMs === undefined) throw new Error("a duration is missing");
    return fallbackMs;
  }
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/.exec(v.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(v)} (use e.g. 500ms, 10s, 5m, 1h, 30d, 1y)`);
  const n = Number(m[1]);
  const day = 86_400_000;
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: day, w: 7 * day, y: 365 * day }[m[2] as "ms" | "s" | "m" | "h" | "d" | "w" | "y"]);
}
