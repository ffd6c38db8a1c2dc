/** Runs a real `cfssl serve` (Debian golang-cfssl) on 127.0.0.1 for tests; stopped by PID. */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface CfsslServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** `port`: listen there (to start it again where a signer already points), else on a free one */
export async function startCfssl(caCert: string, caKey: string, readyWithinMs = 15_000, port?: number): Promise<CfsslServer> {
  port ??= await freePort();
  const child: ChildProcess = spawn("cfssl", ["serve", "-address", "127.0.0.1", "-port", String(port), "-ca", caCert, "-ca-key", caKey], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
    await exited;
  };
  // readiness: poll the info endpoint, bounded; give up early if cfssl died
  const deadline = Date.now() + readyWithinMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cfssl serve exited with ${child.exitCode}: ${log}`);
    try {
      const r = await fetch(`${url}/api/v1/cfssl/info`, { method: "POST", body: "{}", signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`cfssl serve not ready on ${url} within ${readyWithinMs} ms: ${log}`);
    }
    await delay(50);
  }
  return { url, pid: child.pid!, stop };
}
