import type { Decision } from "../../src/types/index.js";

/** a configure decision for `identity` that the flow applies as it stands */
export function configureDecision(identity: string, extra: Partial<Decision> = {}): Decision {
  return {
    outcome: "configure",
    reason: "ok",
    brokers: ["nats://b:4222"],
    configuration: { identity, "plugin.choria.server.provision": "false" },
    certificate: { validityDays: 30, sans: [] },
    actionPolicies: {},
    opaPolicies: {},
    policy: { name: "t", version: "1", hash: "sha256:0" },
    fired: [],
    ...extra,
  };
}
