/**
 * CPU seconds of this process's threads, read from /proc (Linux): the main thread apart from
 * the rest (sign pool and ledger writer threads, V8's GC and compiler helpers, libuv's pool).
 * process.cpuUsage() sums them all, which hides whether a cost is on the event loop or beside it.
 */
import { readdirSync, readFileSync } from "node:fs";

/** clock ticks per second: USER_HZ is 100 on every Linux ABI Node runs on */
const HZ = 100;

export type ThreadCpu = Map<number, number>;

export function threadCpu(): ThreadCpu {
  const out: ThreadCpu = new Map();
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      // fields after the parenthesised name: state is field 3, utime 14, stime 15
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) / HZ);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** seconds spent since `since` by the main thread and by all the others (ended threads' time is lost) */
export function threadCpuSince(since: ThreadCpu): { mainS: number; otherS: number } {
  const now = threadCpu();
  let mainS = 0;
  let otherS = 0;
  for (const [tid, s] of now) {
    const d = s - (since.get(tid) ?? 0);
    if (tid === process.pid) mainS += d;
    else otherS += d;
  }
  return { mainS: +mainS.toFixed(2), otherS: +otherS.toFixed(2) };
}
