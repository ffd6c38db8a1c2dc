import type { Decision, PolicyRef } from "./decision.js";
import type { Inventory } from "./inventory.js";

/** Extra input some deciders need beyond the Inventory (the legacy helper wants raw data). */
export interface DecisionContext {
  inventory: Inventory;
  rawInventory: Record<string, unknown>;
  csr?: { csr: string; public_key: string; ssldir: string };
  /** the full verified provisioning JWT claims, secrets included: the legacy helper gets them as the reference passes them */
  jwtClaims?: Record<string, unknown>;
  /** the gen25519 reply (public_key, directory, signature) when features.ed25519 is on */
  ed25519?: { public_key: string; directory: string; signature: string };
}

/** What decides a node: a policy version (policy/) or the legacy helper; the flow (provision/) asks it. */
export interface Decider {
  readonly ref: PolicyRef;
  decide(ctx: DecisionContext): Promise<Decision>;
}
