/** The `nodes` command run as a user runs it (a child process over the admin endpoint), and a policy that asks for approval. */
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI } from "../helpers/cli.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function nodesCli(admin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, "nodes", ...args, "--admin", admin], { env: { ...process.env, CHORIA_PROVISIONER_ADMIN_TOKEN: "", ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A policy that configures every node with broker set `main` and asks for approval of the
 * identities `approvalGlob` selects; `loglevel` lets a test change the decision of a waiting node.
 */
export function writeApprovalPolicy(dir: string, version: string, approvalGlob: string, loglevel = "info"): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "ops.yaml"),
    `apiVersion: choria-provisioner/v1
kind: Policy
metadata: { name: ops, version: "${version}" }
brokerSets:
  main: [nats://broker.example.net:4222]
defaults:
  brokerSet: main
  configuration:
    loglevel: ${loglevel}
rules:
  - name: new-hardware
    priority: 60
    conditions: { fact: identity, operator: glob, value: "${approvalGlob}" }
    then:
      approval: { reason: "new hardware {{ identity }} needs a look" }
`,
  );
}
