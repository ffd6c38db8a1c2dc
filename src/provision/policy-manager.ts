/**
 * Holds the policy version in force and swaps it atomically on reload. A reload loads and
 * validates the whole set first (optionally runs its tests); only a fully valid set replaces
 * the old one, so an invalid change keeps the old version running. Workers take a reference
 * to the current decider when they start a node, so in-flight nodes finish on the version
 * they started with.
 */
import { EventEmitter } from "node:events";
import type { PolicyRef } from "../types/index.js";
import type { Decider } from "../types/index.js";

export interface ReloadProblem {
  file: string;
  line: number;
  col: number;
  rule?: string;
  message: string;
}

export interface ReloadStatus {
  ok: boolean;
  at: string;
  ref?: PolicyRef;
  error?: string;
  problems?: ReloadProblem[];
}

export interface PolicyManagerHooks {
  reloaded(ref: PolicyRef): void;
  reloadFailed(error: string, problems: ReloadProblem[]): void;
}

/** emits "reload" with the ReloadStatus after every reload attempt */
export class PolicyManager extends EventEmitter {
  private decider?: Decider;
  private reloading?: Promise<ReloadStatus>;
  private again = false;
  lastReload?: ReloadStatus;
  lastError?: ReloadStatus;
  reloads = 0;

  constructor(
    private readonly load: () => Promise<Decider>,
    private readonly hooks: PolicyManagerHooks,
  ) {
    super();
  }

  get loaded(): boolean {
    return this.decider !== undefined;
  }

  current(): Decider {
    if (!this.decider) throw new Error("no policy loaded");
    return this.decider;
  }

  /** Loads and swaps; concurrent calls coalesce into one more reload after the running one. */
  reload(): Promise<ReloadStatus> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let status: ReloadStatus;
      do {
        this.again = false;
        status = await this.reloadOnce();
      } while (this.again);
      this.reloading = undefined;
      return status;
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<ReloadStatus> {
    const at = new Date().toISOString();
    try {
      const d = await this.load();
      this.decider = d;
      this.reloads++;
      const s: ReloadStatus = { ok: true, at, ref: d.ref };
      this.lastReload = s;
      // /status shows the last error only while it is the latest word on the policies
      this.lastError = undefined;
      this.hooks.reloaded(d.ref);
      this.emit("reload", s);
      return s;
    } catch (e) {
      const problems = ((e as { problems?: ReloadProblem[] }).problems ?? []).slice(0, 100);
      const s: ReloadStatus = { ok: false, at, error: (e as Error).message, problems, ref: this.decider?.ref };
      this.lastReload = s;
      this.lastError = s;
      this.hooks.reloadFailed(s.error!, problems);
      this.emit("reload", s);
      return s;
    }
  }
}
