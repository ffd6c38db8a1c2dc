/**
 * A circuit breaker in front of the signer. After `threshold` signer failures in a row it opens:
 * nodes wait before gencsr (each gencsr makes a real server generate a key) and at signing, with
 * their CSR, instead of being deferred and asked for a new one. While open it probes the signer
 * on a backoff and closes, releasing every waiting node, the moment the signer answers.
 */
import { RpcCancelledError } from "../transport/errors.js";
import { backoffMs } from "./steps.js";

export interface SignerBreakerOptions {
  /** consecutive failures that open the breaker */
  threshold: number;
  probeBaseMs: number;
  probeMaxMs: number;
  /** resolves when the signer answers; absent: the breaker half-opens after the backoff and lets signing try */
  probe?: () => Promise<void>;
  onDown(error: Error): void;
  onUp(downMs: number): void;
}

export const DEFAULT_BREAKER = { threshold: 3, probeBaseMs: 250, probeMaxMs: 1000 };

export class SignerBreaker {
  private failures = 0;
  private downSince = 0;
  private probes = 0;
  private timer?: NodeJS.Timeout;
  private waiting: Array<() => void> = [];
  private closed = false;

  constructor(private readonly o: SignerBreakerOptions) {}

  get up(): boolean {
    return this.downSince === 0;
  }

  /** a signature was made */
  success(): void {
    this.failures = 0;
    if (!this.up) this.markUp();
  }

  /** the signer could not be reached */
  failure(e: Error): void {
    this.failures++;
    if (!this.up || this.failures < this.o.threshold) return;
    this.downSince = performance.now();
    this.probes = 0;
    this.o.onDown(e);
    this.scheduleProbe();
  }

  /** resolves at once while the signer is up, else when it comes back; rejects if `signal` aborts */
  waitUp(signal?: AbortSignal): Promise<void> {
    if (this.up || this.closed) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new RpcCancelledError("waiting for the signer"));
    return new Promise<void>((resolve, reject) => {
      const release = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiting = this.waiting.filter((w) => w !== release);
        reject(new RpcCancelledError("waiting for the signer"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(release);
    });
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.probe(), backoffMs(this.probes++, { baseMs: this.o.probeBaseMs, maxMs: this.o.probeMaxMs }));
  }

  private async probe(): Promise<void> {
    if (this.up || this.closed) return;
    if (!this.o.probe) return this.markUp(); // half-open: the next signing is the probe
    try {
      await this.o.probe();
    } catch {
      return this.scheduleProbe();
    }
    this.markUp();
  }

  private markUp(): void {
    if (this.up) return;
    clearTimeout(this.timer);
    const downMs = performance.now() - this.downSince;
    this.downSince = 0;
    this.failures = 0;
    this.o.onUp(downMs);
    for (const w of this.waiting.splice(0)) w();
  }

  /** stops probing and releases every waiting node */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.waiting.splice(0)) w();
  }
}
