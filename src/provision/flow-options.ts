/** The per-node flow's options from the daemon's settings. */
import type { Settings } from "../config/index.js";
import { defaultFlowOptions, type FlowOptions } from "./flow.js";

export function flowOptionsFrom(s: Settings, extra: Partial<FlowOptions> = {}): FlowOptions {
  const f = defaultFlowOptions();
  f.token = s.token;
  f.pki = s.pki;
  f.restartSplay = s.restartSplay;
  f.holdAfterRestartMs = s.holdAfterRestartMs;
  f.holdAfterRefusalMs = s.holdAfterRefusalMs;
  f.upgradeRepository = s.upgradeRepository;
  f.backoff.maxMs = s.backoffMaxMs;
  f.steps.inventory.timeoutMs = s.inventoryTimeoutMs;
  for (const k of ["jwt", "gen25519", "gencsr", "configure", "restart", "shutdown", "release_update"] as const) f.steps[k].timeoutMs = Math.min(f.steps[k].timeoutMs, s.provisionTimeoutMs);
  for (const k of Object.keys(f.steps) as Array<keyof FlowOptions["steps"]>) f.steps[k].maxTimeouts = Math.min(f.steps[k].maxTimeouts, s.maxTimeouts);
  return { ...f, ...extra, steps: { ...f.steps, ...(extra.steps ?? {}) }, backoff: { ...f.backoff, ...(extra.backoff ?? {}) } };
}
