// Looks inside a test file's process that has run for a long time, before node:test's timeout
// kills it: a few runs stalled while loading a file (before its first test) and nothing said
// where. For each such process it keeps its threads' states and kernel wait channels (a thread
// blocked in Atomics.wait sits in a futex; an idle event loop in epoll_wait), its own child
// processes (tsx's esbuild service), and asks it for a diagnostic report (SIGUSR2, with
// --report-on-signal), which Node writes only if the main thread's event loop still turns.
// Linux only: elsewhere it finds nothing and says so.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const HZ = 100;

function read(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** fields of /proc/<pid>/stat after the parenthesised name (state is [0], ppid [1]) */
function statFields(dir) {
  const s = read(join(dir, "stat"));
  const close = s.lastIndexOf(")");
  if (close < 0) return undefined;
  return { name: s.slice(s.indexOf("(") + 1, close), f: s.slice(close + 2).split(" ") };
}

function childrenOf(pid) {
  const out = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const st = statFields(join("/proc", p));
    if (st && Number(st.f[1]) === pid) out.push(Number(p));
  }
  return out;
}

function ageSeconds(pid) {
  const st = statFields(join("/proc", String(pid)));
  if (!st) return 0;
  const uptime = Number(read("/proc/uptime").split(" ")[0]);
  return uptime - Number(st.f[19]) / HZ;
}

function cmdline(pid) {
  return read(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
}

function threads(pid) {
  const dir = `/proc/${pid}/task`;
  let tids = [];
  try {
    tids = readdirSync(dir);
  } catch {
    return [];
  }
  return tids.map((tid) => {
    const st = statFields(join(dir, tid));
    return {
      tid: Number(tid),
      name: st?.name ?? "?",
      state: st?.f[0] ?? "?",
      wchan: read(join(dir, tid, "wchan")) || "?",
      cpuS: st ? (Number(st.f[11]) + Number(st.f[12])) / HZ : 0,
    };
  });
}

/**
 * Watches the node:test runner `runnerPid`: every `everyMs`, each test-file process older than
 * `afterS` seconds is looked at once (and given to `onLook`, after the report was asked for).
 */
export function watchTestFiles(runnerPid, { afterS = 120, everyMs = 15_000, onLook } = {}) {
  const seen = new Map();
  const look = () => {
    let pids;
    try {
      pids = childrenOf(runnerPid);
    } catch {
      return;
    }
    for (const pid of pids) {
      const file = cmdline(pid).find((a) => a.endsWith(".test.ts"));
      if (!file || seen.has(resolve(file))) continue;
      const age = ageSeconds(pid);
      if (age < afterS) continue;
      const snap = {
        pid,
        file,
        ageS: Math.round(age),
        threads: threads(pid),
        children: childrenOf(pid).map((c) => ({ pid: c, cmd: cmdline(c).join(" ").slice(0, 200), threads: threads(c) })),
      };
      seen.set(resolve(file), snap);
      try {
        process.kill(pid, "SIGUSR2");
      } catch {
        // it ended meanwhile
      }
      onLook?.(snap);
    }
  };
  const timer = setInterval(look, everyMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    /** what was seen of `file`'s process, if it was looked at */
    snapshot: (file) => seen.get(resolve(file)),
  };
}

function threadLines(ts) {
  return ts.map((t) => `    ${t.tid} ${t.name} ${t.state} ${t.wchan} ${t.cpuS.toFixed(2)}s`);
}

/** the CI log's account of one stalled file: the snapshot, and the report if Node wrote one */
export function describeStall(file, snap, reportDir) {
  const lines = [`--- ${file}: what its process was doing`];
  if (!snap) {
    lines.push("  not seen by the watch (it ended or was killed before the watch looked, or this is not Linux)");
    return lines.join("\n");
  }
  lines.push(`  pid ${snap.pid}, running ${snap.ageS} s; threads (tid name state wait-channel cpu):`, ...threadLines(snap.threads));
  for (const c of snap.children) lines.push(`  child ${c.pid}: ${c.cmd}`, ...threadLines(c.threads));
  let reports = [];
  try {
    reports = readdirSync(reportDir).filter((f) => f.includes(`.${snap.pid}.`));
  } catch {
    // no report directory: no report was written
  }
  if (reports.length === 0) {
    lines.push("  no diagnostic report: the main thread's event loop did not turn after SIGUSR2 (blocked in synchronous code or a wait)");
    return lines.join("\n");
  }
  try {
    const r = JSON.parse(readFileSync(join(reportDir, reports[0]), "utf8"));
    lines.push("  diagnostic report: the event loop still turns");
    lines.push(`  javascript stack: ${r.javascriptStack?.message ?? "?"}`, ...(r.javascriptStack?.stack ?? []).slice(0, 12).map((l) => `    ${l}`));
    const handles = {};
    for (const h of r.libuv ?? []) if (h.is_active) handles[h.type] = (handles[h.type] ?? 0) + 1;
    lines.push(`  active libuv handles: ${JSON.stringify(handles)}`);
    // tsx's module hooks run in a worker: where it waits matters as much as the main thread
    for (const [n, w] of (r.workers ?? []).entries()) {
      lines.push(`  worker ${n + 1} javascript stack: ${w.javascriptStack?.message ?? "?"}`, ...(w.javascriptStack?.stack ?? []).slice(0, 8).map((l) => `    ${l}`));
    }
  } catch (e) {
    lines.push(`  report ${reports[0]} unreadable: ${e.message}`);
  }
  return lines.join("\n");
}
