/** The per-node flow's options from the daemon's settings, whose defaults are the schema's. */
import { resolveSettings, type Settings } from "../config/index.js";
import type { FlowOptions } from "./flow.js";
import type { StepPolicy } from "./steps.js";

type StepName = keyof FlowOptions["steps"];

/**
 * What is not configuration: each step's tries (the reference's: jwt 3, gen25519 5) and the
 * caps some steps put on the configured rpc.provision_timeout and rpc.max_timeouts. restart and
 * shutdown answer at once (choria_provision's DDL timeout, 20 s, is for the rest); gencsr and
 * gen25519 make a key on the node and release_update downloads: one timeout there ends the step.
 */
const STEPS: Record<StepName, { tries: number; timeoutCapMs?: number; maxTimeoutsCap?: number }> = {
  jwt: { tries: 3 },
  gen25519: { tries: 5, maxTimeoutsCap: 1 },
  inventory: { tries: 5 },
  gencsr: { tries: 2, maxTimeoutsCap: 1 },
  configure: { tries: 5 },
  restart: { tries: 3, timeoutCapMs: 10_000 },
  shutdown: { tries: 3, timeoutCapMs: 10_000 },
  release_update: { tries: 3, maxTimeoutsCap: 1 },
};

const BACKOFF_BASE_MS = 250;

export function flowOptionsFrom(s: Settings, extra: Partial<FlowOptions> = {}): FlowOptions {
  const steps = {} as FlowOptions["steps"];
  for (const [name, t] of Object.entries(STEPS) as Array<[StepName, (typeof STEPS)[StepName]]>) {
    const timeoutMs = name === "inventory" ? s.inventoryTimeoutMs : Math.min(t.timeoutCapMs ?? Infinity, s.provisionTimeoutMs);
    steps[name] = { tries: t.tries, timeoutMs, maxTimeouts: Math.min(t.maxTimeoutsCap ?? Infinity, s.maxTimeouts) } satisfies StepPolicy;
  }
  const f: FlowOptions = {
    token: s.token,
    pki: s.pki,
    restartSplay: s.restartSplay,
    holdAfterRestartMs: s.holdAfterRestartMs,
    holdAfterRefusalMs: s.holdAfterRefusalMs,
    upgradeRepository: s.upgradeRepository,
    steps,
    backoff: { baseMs: BACKOFF_BASE_MS, maxMs: s.backoffMaxMs },
  };
  return { ...f, ...extra, steps: { ...f.steps, ...(extra.steps ?? {}) }, backoff: { ...f.backoff, ...(extra.backoff ?? {}) } };
}

/** The flow with every setting at its default and no provisioning token (tests, tools). */
export function defaultFlowOptions(): FlowOptions {
  return flowOptionsFrom(resolveSettings({}, {}));
}
