/**
 * Starts a real nats-server (the Debian package) on a free loopback port, for tests,
 * the demo and benchmarks. Readiness is taken from the server's own "Server is ready"
 * log line, not from a sleep. Stopped by PID.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface LocalNatsServer {
  url: string;
  port: number;
  pid: number;
  /** stops the server (SIGTERM, then SIGKILL) and waits for it to exit */
  stop(): Promise<void>;
  /** stops and starts again on the same port (same JetStream store) */
  /** stops the server and starts it again on the same port, after `downMs` of outage */
  restart(downMs?: number): Promise<void>;
}

export interface LocalNatsOptions {
  jetstream?: boolean;
  port?: number;
  binary?: string;
  /** max payload in bytes */
  maxPayload?: number;
  /**
   * TLS for client connections. `verify` requires client certificates signed by `ca` (a
   * Choria server's real home); `allowNonTls` offers TLS without requiring it, which is what
   * a provisioning broker must do: provisioning-mode servers always dial with TLS.
   */
  tls?: { cert: string; key: string; ca?: string; verify?: boolean; allowNonTls?: boolean };
}

function tlsConfigFile(tls: NonNullable<LocalNatsOptions["tls"]>): string {
  const dir = mkdtempSync(join(tmpdir(), "cp-nats-tls-"));
  const lines = [`cert_file: ${JSON.stringify(tls.cert)}`, `key_file: ${JSON.stringify(tls.key)}`];
  if (tls.ca) lines.push(`ca_file: ${JSON.stringify(tls.ca)}`);
  if (tls.verify) lines.push("verify: true");
  const conf = `tls {\n  ${lines.join("\n  ")}\n}\n${tls.allowNonTls ? "allow_non_tls: true\n" : ""}`;
  const file = join(dir, "nats.conf");
  writeFileSync(file, conf);
  return file;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const diesWithUs = new Set<ChildProcess>();

/**
 * SIGKILLs `child` by PID if it still runs when this process exits (process.exit, the end of the
 * event loop, a signal a command turned into an exit): a launcher that stops early (a failed
 * test, a signalled bench) must not leave brokers or bench children running without it.
 */
export function killOnExit(child: ChildProcess): void {
  if (diesWithUs.size === 0) process.once("exit", killLeftovers);
  diesWithUs.add(child);
  child.once("exit", () => {
    diesWithUs.delete(child);
    if (diesWithUs.size === 0) process.off("exit", killLeftovers);
  });
}

function killLeftovers(): void {
  for (const c of diesWithUs) c.kill("SIGKILL");
}

function findBinary(explicit?: string): string {
  return explicit ?? process.env.NATS_SERVER_BIN ?? "nats-server";
}

export async function startNatsServer(opts: LocalNatsOptions = {}): Promise<LocalNatsServer> {
  const port = opts.port ?? (await freePort());
  const storeDir = opts.jetstream ? mkdtempSync(join(tmpdir(), "cp-nats-js-")) : undefined;
  const bin = findBinary(opts.binary);
  const confFile = opts.tls ? tlsConfigFile(opts.tls) : undefined;
  let child: ChildProcess | undefined;

  const launch = (): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const args = ["-a", "127.0.0.1", "-p", String(port), "--no_advertise"];
      if (confFile) args.push("-c", confFile);
      if (storeDir) args.push("-js", "-sd", storeDir);
      if (opts.maxPayload) args.push("--max_payload", String(opts.maxPayload));
      const c = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
      killOnExit(c);
      let log = "";
      let settled = false;
      const onData = (b: Buffer): void => {
        log += b.toString();
        if (!settled && log.includes("Server is ready")) {
          settled = true;
          c.stderr?.off("data", onData);
          c.stderr?.resume();
          // a server nobody stopped (a test that failed before its finally) must not keep this
          // process alive, or it never reaches the exit that kills the server
          c.unref();
          (c.stderr as Socket | null)?.unref();
          resolve(c);
        }
        if (log.length > 65536) log = log.slice(-8192);
      };
      c.stderr?.on("data", onData);
      c.once("error", (err) => {
        if (!settled) {
          settled = true;
          reject(new Error(`could not start ${bin}: ${err.message} (install Debian's nats-server)`));
        }
      });
      c.once("exit", (code) => {
        if (!settled) {
          settled = true;
          reject(new Error(`${bin} exited with ${code} before it was ready: ${log.trim().split("\n").slice(-3).join(" | ")}`));
        }
      });
    });

  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
      c.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      c.kill("SIGTERM");
    });
  };

  child = await launch();
  const server: LocalNatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    async stop() {
      await stopChild();
      if (storeDir) rmSync(storeDir, { recursive: true, force: true });
      if (confFile) rmSync(dirname(confFile), { recursive: true, force: true });
    },
    async restart(downMs = 0) {
      await stopChild();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
      server.pid = child.pid ?? -1;
    },
  };
  return server;
}
