/**
 * Processes a test starts, stopped by PID when the test ends however it ends: every helper here
 * registers its own t.after, so a failed assertion never leaves a nats-server or a CLI behind
 * (a live child keeps the test file's process, and so the whole run, from finishing).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { startNatsServer, type LocalNatsOptions, type LocalNatsServer } from "../../src/transport/index.js";
import { CLI } from "./cli.js";
import { REPO } from "./daemon.js";



/** A real nats-server on a free loopback port, stopped when the test ends. */
export async function startTestNats(t: TestContext, o: LocalNatsOptions = {}): Promise<LocalNatsServer> {
  const srv = await startNatsServer(o);
  t.after(() => srv.stop());
  return srv;
}

/** state of a process from /proc, undefined when there is none; "Z" (zombie) has already exited */
function procState(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

export function running(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s.state !== "Z";
}

/** every live process below `pid` (children, their children, ...), from /proc (Linux) */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    const s = procState(p);
    if (!s || s.state === "Z") continue;
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** the command line of `pid` as one string ("" when it is gone) */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/**
 * Resolves once none of `pids` runs any more. Processes that are not our children give no event
 * when they end, so this looks every 100 ms, up to `timeoutMs`; it rejects naming the survivors.
 */
export async function allGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(running);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running after ${timeoutMs} ms: ${left.map((p) => `${p} (${commandLine(p)})`).join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  child: ChildProcess;
  pid: number;
  stdout: string;
  stderr: string;
  exited: Promise<Exit>;
  /** resolves with the first match of `re` in stdout or stderr (seen already or to come) */
  output(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
}

/**
 * `choria-provisioner <args>` in a child process. When the test ends, it and every process it
 * started that still runs get SIGKILL by PID.
 */
export function spawnCli(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return spawnNode(t, [...CLI, ...args], env);
}

/** `npm run bench`'s entry point (not a command of the product's CLI) */
export function spawnBench(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return spawnNode(t, ["--import", "tsx", join(REPO, "bench", "main.ts"), ...args], env);
}

function spawnNode(t: TestContext, argv: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, argv, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const listeners = new Set<() => void>();
  const cli: CliProcess = {
    child,
    pid: child.pid!,
    stdout: "",
    stderr: "",
    exited,
    output(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(cli.stdout) ?? re.exec(cli.stderr);
          if (!m) return;
          done();
          resolve(m);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${re} within ${timeoutMs} ms; stdout:\n${cli.stdout.slice(-2000)}\nstderr:\n${cli.stderr.slice(-2000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  child.stdout!.on("data", (b: Buffer) => {
    cli.stdout += b.toString();
    notify();
  });
  child.stderr!.on("data", (b: Buffer) => {
    cli.stderr += b.toString();
    notify();
  });
  t.after(async () => {
    const left = [...descendants(cli.pid), cli.pid].filter(running);
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // it ended meanwhile
      }
    }
    if (running(cli.pid)) await exited;
  });
  return cli;
}

/** resolves with how `p` exited, or rejects when it still runs after `timeoutMs` */
export function exitWithin(p: CliProcess, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pid ${p.pid} still runs ${timeoutMs} ms after the signal; stderr:\n${p.stderr.slice(-2000)}`)), timeoutMs);
  });
  return Promise.race([p.exited, late]).finally(() => clearTimeout(timer));
}
