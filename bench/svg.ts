/** A hand-written SVG line chart: provisioned nodes over time, one line per e2e run. */
export interface Series {
  label: string;
  /** [seconds, cumulative nodes] */
  points: Array<[number, number]>;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function lineChartSvg(o: { title: string; xLabel: string; yLabel: string; series: Series[]; notes?: string[] }): string {
  const W = 900;
  const H = 520;
  const m = { l: 80, r: 30, t: 50, b: 70 + 16 * (o.notes?.length ?? 0) };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xMax = Math.max(1, ...o.series.flatMap((s) => s.points.map((p) => p[0])));
  const yMax = Math.max(1, ...o.series.flatMap((s) => s.points.map((p) => p[1])));
  const xs = niceStep(xMax, 10);
  const ys = niceStep(yMax, 8);
  const xTop = Math.ceil(xMax / xs) * xs;
  const yTop = Math.ceil(yMax / ys) * ys;
  const X = (v: number): number => m.l + (v / xTop) * pw;
  const Y = (v: number): number => m.t + ph - (v / yTop) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${esc(o.title)}</text>`);
  for (let v = 0; v <= xTop + 1e-9; v += xs) {
    out.push(`<line x1="${X(v)}" y1="${m.t}" x2="${X(v)}" y2="${m.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${X(v)}" y="${m.t + ph + 18}" text-anchor="middle">${+v.toFixed(2)}</text>`);
  }
  for (let v = 0; v <= yTop + 1e-9; v += ys) {
    out.push(`<line x1="${m.l}" y1="${Y(v)}" x2="${m.l + pw}" y2="${Y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 8}" y="${Y(v) + 4}" text-anchor="end">${v.toLocaleString("en-US")}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 40}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(20 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
    const ly = m.t + 16 + i * 18;
    out.push(`<line x1="${m.l + 12}" y1="${ly - 4}" x2="${m.l + 36}" y2="${ly - 4}" stroke="${c}" stroke-width="3"/>`);
    out.push(`<text x="${m.l + 42}" y="${ly}">${esc(s.label)}</text>`);
  });
  (o.notes ?? []).forEach((n, i) => out.push(`<text x="${m.l}" y="${m.t + ph + 60 + i * 16}" fill="#555">${esc(n)}</text>`));
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
