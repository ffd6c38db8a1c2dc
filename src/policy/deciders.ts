/** The two deciders the daemon puts in force: a loaded policy version, or the legacy helper program. */
import { deferDecision, measureJson, type Decider, type DecisionContext, type JsonLimits, type PolicyRef } from "../types/index.js";
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
 * What the helper can be given: its input is JSON on stdin, and a node's inventory or claims
 * nested thousands deep cannot be written (JSON.stringify overflows the stack) nor read by a Go
 * helper (encoding/json refuses more than 10,000 levels).
 */
const HELPER_INPUT_LIMITS: JsonLimits = { maxDepth: 1000, maxBytes: Number.MAX_SAFE_INTEGER };

/** why this node's input cannot go to the helper, or undefined when it can */
export function helperInputProblem(ctx: Pick<DecisionContext, "rawInventory" | "jwtClaims">): string | undefined {
  for (const [what, v] of [["inventory", ctx.rawInventory], ["provisioning JWT claims", ctx.jwtClaims]] as const) {
    const m = measureJson(v, HELPER_INPUT_LIMITS);
    if (!m.ok) return `the node's ${what} cannot be passed to the helper: ${m.message}`;
  }
  return undefined;
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
        const unfit = helperInputProblem(ctx);
        if (unfit) {
          obs.failed(ctx.inventory.identity, unfit);
          return deferDecision(unfit, now);
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
