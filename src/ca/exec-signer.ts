/**
 * Signing by an external command: the CSR PEM goes to stdin, the certificate PEM (optionally
 * followed by its chain) comes back on stdout. Any failure to produce one is CaUnavailableError,
 * so the node is deferred rather than refused for what is an operator-side problem.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { acceptRemoteCertificate } from "./cert-info.js";
import { isOwnParse, parseCsr } from "./csr-inspect.js";
import { CaRejectedError, CaUnavailableError, type SignRequest, type SignedCertificate, type Signer } from "../types/index.js";
import { childEnv } from "../types/child-env.js";

export interface ExecSignerOptions {
  command: string;
  args?: string[];
  timeoutMs?: number;
  /** chain for configure.ca; otherwise certificates after the leaf on stdout are used */
  caPem?: string;
  caFile?: string;
  /** simultaneous child processes (default: cores) */
  concurrency?: number;
}

const MAX_STDOUT = 1024 * 1024;
const STDERR_TAIL = 4096;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;
const PRIVATE_KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/** Error text may end up in logs and decision records: private keys must never be in it. */
export function redactKeys(text: string): string {
  return text.replace(PRIVATE_KEY_BLOCK, "[private key redacted]");
}

export function createExecSigner(opts: ExecSignerOptions): Signer {
  if (!opts.command) throw new Error("exec signer needs a command");
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const configuredChain = opts.caPem ?? (opts.caFile ? readFileSync(opts.caFile, "utf8") : undefined);
  const limit = opts.concurrency ?? availableParallelism();
  let running = 0;
  const waiting: Array<() => void> = [];
  const children = new Set<number>();

  async function slot<T>(fn: () => Promise<T>): Promise<T> {
    if (running >= limit) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  }

  function run(req: SignRequest): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const what = `exec signer ${opts.command}`;
      // own process group, so a timeout also kills whatever the command started
      const child = spawn(opts.command, opts.args ?? [], {
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        env: childEnv({
          CHORIA_IDENTITY: req.identity,
          CHORIA_SANS: [req.identity, ...(req.profile.sans ?? [])].join(","),
          CHORIA_VALIDITY_DAYS: String(req.profile.validityDays),
        }),
      });
      let stdout = "";
      let stderr = "";
      let settled = false;
      const done = (err: Error | null, value?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (child.pid) children.delete(child.pid);
        if (err) reject(err);
        else resolve(value!);
      };
      const killGroup = (): void => {
        try {
          if (child.pid) process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        killGroup();
        done(new CaUnavailableError(`${what} timed out after ${timeoutMs} ms${tail(stderr)}`));
      }, timeoutMs);
      if (child.pid) children.add(child.pid);

      child.stdout.setEncoding("utf8");
      child.stderr.setEncoding("utf8");
      child.stdout.on("data", (d: string) => {
        stdout += d;
        if (stdout.length > MAX_STDOUT) {
          killGroup();
          done(new CaUnavailableError(`${what} wrote more than ${MAX_STDOUT} bytes to stdout`));
        }
      });
      child.stderr.on("data", (d: string) => {
        stderr = (stderr + d).slice(-STDERR_TAIL * 2);
      });
      // a command that exits without reading stdin causes EPIPE; its exit status tells the story
      child.stdin.on("error", () => {});
      child.on("error", (e) => done(new CaUnavailableError(`${what} could not be started: ${e.message}`, { cause: e })));
      child.on("close", (code, signal) => {
        if (code !== 0) return done(new CaUnavailableError(`${what} failed (${signal ? `signal ${signal}` : `exit code ${code}`})${tail(stderr)}`));
        done(null, stdout);
      });
      child.stdin.end(req.csrPem);
    });
  }

  return {
    kind: "exec",
    async sign(req: SignRequest): Promise<SignedCertificate> {
      // the daemon's own parse of this PEM when it has one: no second parse and verify
      const csr = isOwnParse(req.checked, req.csrPem) ? req.checked : parseCsr(req.csrPem);
      const out = await slot(() => run(req));
      if (PRIVATE_KEY_BLOCK.test(out)) {
        PRIVATE_KEY_BLOCK.lastIndex = 0;
        throw new CaRejectedError(`exec signer ${opts.command} printed a private key on stdout; refusing its output`);
      }
      const certs = out.match(CERT_BLOCK) ?? [];
      if (certs.length === 0) throw new CaUnavailableError(`exec signer ${opts.command} printed no certificate`);
      const chain = configuredChain ?? certs.slice(1).map((c) => c + "\n").join("");
      if (!chain) throw new CaRejectedError(`exec signer ${opts.command} printed no CA chain and none is configured (caPem/caFile)`);
      return acceptRemoteCertificate(certs[0]! + "\n", chain, csr.spkiDer, req.identity, `exec signer ${opts.command}`);
    },
    async close(): Promise<void> {
      for (const pid of children) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
  };
}

function tail(stderr: string): string {
  const t = redactKeys(stderr).trim().slice(-STDERR_TAIL);
  return t ? `: ${t}` : "";
}
