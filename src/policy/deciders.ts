/** The two deciders the daemon puts in force: a loaded policy version, or the legacy helper program. */
import { deferDecision, type Decider, type PolicyRef } from "../types/index.js";
import { decisionFromHelper, helperRef, helperRefNow, runLegacyHelper } from "./legacy-helper.js";
import { Slots } from "./slots.js";
import type { PolicySet } from "./index.js";

export function policyDecider(set: PolicySet): Decider {
  return { ref: set.ref, decide: (ctx) => set.evaluate(ctx.inventory) };
}

export interface HelperCommand {
  command: string;
  args: string[];
  timeoutMs: number;
  /** helpers running at once; further nodes wait for a slot (default 1) */
  concurrency?: number;
}

/** what the daemon counts and logs about the helper (the reference provisioner's helper metrics) */
export interface HelperObserver {
  time(seconds: number): void;
  shutdownRequested(): void;
  /** the helper timed out, exited non-zero or printed something unusable; the node is deferred */
  failed(identity: string, error: string): void;
  /** the helper file's content changed since the last node: decisions now name the new hash */
  changed?(ref: PolicyRef): void;
}

/**
 * Legacy mode: the reference's helper program decides; a helper that fails defers the node.
 * The helper's hash is taken for every node, so an edited helper shows in the audit log and
 * the metrics from its first decision on, without a reload.
 */
export function helperDecider(h: HelperCommand, obs: HelperObserver): Decider {
  let ref = helperRef(h.command);
  const slots = new Slots(h.concurrency ?? 1);
  return {
    get ref() {
      return ref;
    },
    decide: (ctx) =>
      slots.run(async () => {
        const now = await helperRefNow(h.command);
        if (now.hash !== ref.hash) {
          ref = now;
          obs.changed?.(now);
        }
        const started = performance.now();
        try {
          const out = await runLegacyHelper(h.command, h.args, { identity: ctx.inventory.identity, csr: ctx.csr ?? null, ed25519_pubkey: ctx.ed25519 ?? null, inventory: JSON.stringify(ctx.rawInventory), jwt: ctx.jwtClaims ?? null }, h.timeoutMs);
          obs.time((performance.now() - started) / 1000);
          const d = decisionFromHelper(out, now, ctx.inventory.identity);
          if (d.outcome === "shutdown") obs.shutdownRequested();
          return d;
        } catch (e) {
          obs.failed(ctx.inventory.identity, (e as Error).message);
          return deferDecision((e as Error).message, now);
        }
      }),
  };
}
