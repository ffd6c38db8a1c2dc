/** Child processes for the benchmarks: spawned with tsx, driven by IPC messages. */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { killOnExit } from "../src/transport/index.js";

export interface Child {
  proc: ChildProcess;
  send(m: unknown): void;
  /** resolves with the next message of this type; rejects on an "error" message, exit or timeout */
  next<T = Record<string, unknown>>(type: string, timeoutMs?: number): Promise<T>;
  on(type: string, fn: (m: Record<string, unknown>) => void): void;
  exited: Promise<number | null>;
}

export function benchFile(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

/** "src" runs the TypeScript sources through tsx; "dist" the product's modules as tsc emits them (useShippedCode) */
let code: "src" | "dist" = "src";

export function benchCode(): "src" | "dist" {
  return code;
}

/**
 * Builds dist/ (`npm run build`) and from then on runs the children's product modules from it,
 * as bin/choria-provisioner does: `npm run bench` measures the code that ships. Tests keep the
 * sources, so they need no build.
 */
export function useShippedCode(): void {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: "inherit" });
  code = "dist";
}

export function spawnChild(file: string, args: string[] = [], execArgv: string[] = []): Child {
  const loader = code === "dist" ? ["--import", "tsx", "--import", benchFile("shipped-code.mjs")] : ["--import", "tsx"];
  const proc = fork(file, args, { execArgv: [...loader, ...execArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  killOnExit(proc);
  const listeners = new Map<string, Set<(m: Record<string, unknown>) => void>>();
  let failure: Error | undefined;
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  proc.on("message", (m: Record<string, unknown>) => {
    const type = String(m.type);
    if (type === "error") failure = new Error(`${file}: ${String(m.error)}`);
    for (const fn of [...(listeners.get(type) ?? [])]) fn(m);
    if (type === "error") for (const set of listeners.values()) for (const fn of [...set]) fn(m);
  });
  const on = (type: string, fn: (m: Record<string, unknown>) => void): void => {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type)!.add(fn);
  };
  const off = (type: string, fn: (m: Record<string, unknown>) => void): void => void listeners.get(type)?.delete(fn);
  return {
    proc,
    send: (m) => proc.send(m as never),
    on,
    exited,
    next<T>(type: string, timeoutMs = 600_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (failure) return reject(failure);
        const fn = (m: Record<string, unknown>): void => {
          cleanup();
          if (m.type === "error") reject(new Error(`${file}: ${String(m.error)}`));
          else resolve(m as T);
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`${file}: no ${type} message within ${timeoutMs} ms`));
        }, timeoutMs);
        const onExit = (code: number | null): void => {
          cleanup();
          reject(new Error(`${file} exited (${code}) while waiting for ${type}`));
        };
        const cleanup = (): void => {
          clearTimeout(t);
          off(type, fn);
          off("error", fn);
          proc.off("exit", onExit);
        };
        on(type, fn);
        on("error", fn);
        proc.once("exit", onExit);
      });
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name; clock ticks of 1/100 s
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Peak RSS of a process (VmHWM), MiB. */
export function procPeakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
