/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per file/package,
 * top N. Only the main thread is profiled (worker threads write their own files).
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  functions: ProfileRow[];
  files: ProfileRow[];
}

function shortUrl(url: string): string {
  if (!url) return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}/…/${rest[rest.length - 1]}` : `${rest[0]}/…/${rest[rest.length - 1]}`;
  }
  const src = url.indexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, "").replace(/^node:/, "node:");
}

export function summariseProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const totalUs = p.endTime - p.startTime;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    if (cf.functionName === "(idle)") idle += us;
    if (cf.functionName === "(garbage collector)") gc += us;
    const where = `${shortUrl(cf.url)}:${cf.lineNumber + 1}`;
    const key = `${cf.functionName}@${where}`;
    const e = fn.get(key) ?? { name: cf.functionName || "(anonymous)", where, us: 0 };
    e.us += us;
    fn.set(key, e);
    const f = cf.url ? shortUrl(cf.url).replace(/\/…\/.*$/, "") : cf.functionName;
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const busy = totalUs - idle;
  const row = (name: string, where: string, us: number): ProfileRow => ({ name, where, selfMs: +(us / 1000).toFixed(1), pct: +((100 * us) / busy).toFixed(1) });
  return {
    totalMs: +(totalUs / 1000).toFixed(0),
    idleMs: +(idle / 1000).toFixed(0),
    gcMs: +(gc / 1000).toFixed(0),
    functions: [...fn.values()].filter((e) => e.name !== "(idle)").sort((a, b) => b.us - a.us).slice(0, top).map((e) => row(e.name, e.where, e.us)),
    files: [...files.entries()].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => row(k, "", us)),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`profile: ${s.totalMs} ms, idle ${s.idleMs} ms, gc ${s.gcMs} ms; % of non-idle main-thread time`, "top self time by function:"];
  for (const r of s.functions) lines.push(`  ${r.pct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(8)} ms  ${r.name}  ${r.where}`);
  lines.push("by file / package:");
  for (const r of s.files) lines.push(`  ${r.pct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(8)} ms  ${r.name}`);
  return lines.join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(formatProfile(summariseProfile(process.argv[2]!, Number(process.argv[3] ?? 25))) + "\n");
}
