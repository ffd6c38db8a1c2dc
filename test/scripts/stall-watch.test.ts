import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { describeStall, watchTestFiles, type StallSnapshot } from "../../scripts/stall-watch.mjs";

// Two test files that never reach their first test, run the way node:test runs a file (a child
// of this process, with the runner's diagnostic flags): one blocks its main thread, one waits
// with its event loop turning. The watch must tell them apart.
const dir = mkdtempSync(join(tmpdir(), "cp-stall-watch-"));
const reports = join(dir, "reports");
mkdirSync(reports);
const blocked = join(dir, "blocked.test.ts");
const idle = join(dir, "idle.test.ts");
writeFileSync(blocked, "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n");
writeFileSync(idle, "setInterval(() => {}, 1000);\n");
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** resolves never; rejects if the process ends, which a stalled file's does not */
function start(file: string): Promise<never> {
  const c = spawn(process.execPath, ["--import", "tsx", "--report-on-signal", "--report-signal=SIGUSR2", `--report-directory=${reports}`, file], { stdio: "ignore" });
  children.push(c);
  return new Promise((_, reject) => c.once("exit", (code, signal) => reject(new Error(`${file} ended (${code ?? signal}) instead of stalling`))));
}

test("a stalled file's process is described: blocked main thread against a turning event loop", { skip: process.platform !== "linux" && "reads /proc" }, async () => {
  const seen = new Map<string, StallSnapshot>();
  const bothSeen = new Promise<void>((resolve) => {
    const w = watchTestFiles(process.pid, {
      afterS: 1,
      everyMs: 100,
      onLook: (s) => {
        seen.set(s.file, s);
        if (seen.size === 2) {
          w.stop();
          resolve();
        }
      },
    });
  });
  // the idle file's report is written once its loop handles SIGUSR2; it is whole once it parses
  const complete = (f: string) => {
    try {
      JSON.parse(readFileSync(join(reports, f), "utf8"));
      return true;
    } catch {
      return false;
    }
  };
  const reportWritten = new Promise<void>((resolve) => {
    const w = watch(reports, () => {
      if (readdirSync(reports).some((f) => f.endsWith(".json") && complete(f))) {
        w.close();
        resolve();
      }
    });
  });
  const ended = Promise.race([start(blocked), start(idle)]);
  await Promise.race([Promise.all([bothSeen, reportWritten]), ended]);

  const b = seen.get(blocked)!;
  const i = seen.get(idle)!;
  const main = (s: StallSnapshot) => s.threads.find((t) => t.tid === s.pid)!;
  // where the kernel names the wait: Atomics.wait is a futex, an idle loop is in epoll_wait
  if (main(b).wchan !== "?" && main(b).wchan !== "0") {
    assert.match(main(b).wchan, /futex/);
    assert.match(main(i).wchan, /epoll/);
  }
  const bText = describeStall(blocked, b, reports);
  assert.match(bText, /no diagnostic report: the main thread's event loop did not turn/);
  const iText = describeStall(idle, i, reports);
  assert.match(iText, /diagnostic report: the event loop still turns/);
  assert.match(iText, /active libuv handles: .*"timer"/);
  // a file the watch never looked at says so rather than nothing
  assert.match(describeStall(join(dir, "other.test.ts"), undefined, reports), /not seen by the watch/);
});
