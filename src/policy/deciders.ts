/** The two deciders the daemon puts in force: a loaded policy version, or the legacy helper program. */
import { deferDecision, type Decider } from "../types/index.js";
import { decisionFromHelper, helperRef, runLegacyHelper } from "./legacy-helper.js";
import type { PolicySet } from "./index.js";

export function policyDecider(set: PolicySet): Decider {
  return { ref: set.ref, decide: (ctx) => set.evaluate(ctx.inventory) };
}

export interface HelperCommand {
  command: string;
  args: string[];
  timeoutMs: number;
}

/** what the daemon counts about the helper (the reference provisioner's helper metrics) */
export interface HelperObserver {
  time(seconds: number): void;
  shutdownRequested(): void;
  failed(): void;
}

/** Legacy mode: the reference's helper program decides; a helper that fails defers the node. */
export function helperDecider(h: HelperCommand, obs: HelperObserver): Decider {
  const ref = helperRef(h.command);
  return {
    ref,
    async decide(ctx) {
      const started = performance.now();
      try {
        const out = await runLegacyHelper(h.command, h.args, { identity: ctx.inventory.identity, csr: ctx.csr ?? null, ed25519_pubkey: ctx.ed25519 ?? null, inventory: JSON.stringify(ctx.rawInventory), jwt: ctx.jwtClaims ?? null }, h.timeoutMs);
        obs.time((performance.now() - started) / 1000);
        const d = decisionFromHelper(out, ref, ctx.inventory.identity);
        if (d.outcome === "shutdown") obs.shutdownRequested();
        return d;
      } catch (e) {
        obs.failed();
        return deferDecision((e as Error).message, ref);
      }
    },
  };
}
