import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Inventory } from "../../src/types/index.js";

/** writes `files` (relative path -> content) under a fresh temp dir with policies/ and rules/ */
export function policyDir(files: Record<string, string>): { root: string; policiesDir: string; rulesDir: string } {
  const root = mkdtempSync(join(tmpdir(), "policy-test-"));
  mkdirSync(join(root, "policies"));
  mkdirSync(join(root, "rules"));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return { root, policiesDir: join(root, "policies"), rulesDir: join(root, "rules") };
}

export function inventory(identity: string, facts: Record<string, unknown>, more: Partial<Inventory> = {}): Inventory {
  return {
    identity,
    facts,
    agents: ["choria_provision", "choria_util", "discovery", "rpcutil"],
    classes: [],
    collectives: ["provisioning"],
    mainCollective: "provisioning",
    dataPlugins: [],
    machines: [],
    version: "0.29.4",
    upgradable: false,
    ...more,
  };
}

export const HEADER = `apiVersion: choria-provisioner/v1
kind: Policy
metadata:
  name: p
  version: "1"
`;
