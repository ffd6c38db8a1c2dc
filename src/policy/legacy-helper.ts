/**
 * Legacy helper compatibility: the reference provisioner hands each node to an external
 * program (JSON on stdin, JSON on stdout, 10 s limit). Running such a helper through the
 * same Decision type lets users of the reference move one step at a time: keep the helper,
 * then replace it by a policy.
 */
import { spawn } from "node:child_process";
import { childEnv } from "../types/child-env.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import type { Decision, PolicyRef, ServerClaims } from "../types/index.js";

export interface LegacyHelperInput {
  identity: string;
  csr: { csr: string; public_key: string; ssldir: string } | null;
  /** the gen25519 reply {public_key, directory, signature} when features.ed25519 is on */
  ed25519_pubkey: Record<string, string> | null;
  /** the rpcutil#inventory data as a JSON string, as the reference passes it */
  inventory: string;
  jwt: Record<string, unknown> | null;
}

export interface LegacyHelperOutput {
  defer?: boolean;
  shutdown?: boolean;
  msg?: string;
  key?: string;
  certificate?: string;
  ca?: string;
  ssldir?: string;
  server_claims?: Record<string, unknown>;
  configuration?: Record<string, string>;
  action_policies?: Record<string, string>;
  opa_policies?: Record<string, string>;
  upgrade?: string;
}

export class LegacyHelperError extends Error {
  readonly stderr: string;
  constructor(message: string, stderr = "") {
    super(message);
    this.name = "LegacyHelperError";
    this.stderr = stderr;
  }
}

/** The helper as a policy reference: its file's SHA-256 (or, for a command on PATH, of its name). */
export function helperRef(command: string): PolicyRef {
  let content: Buffer | string = command;
  try {
    content = readFileSync(command);
  } catch {
    // not a readable file (a name found on PATH): its name stands in
  }
  return refFromContent(command, content);
}

/** helperRef without blocking the event loop: taken for every node, so an edited helper shows at once */
export async function helperRefNow(command: string): Promise<PolicyRef> {
  const content = await readFile(command).catch(() => command);
  return refFromContent(command, content);
}

function refFromContent(command: string, content: Buffer | string): PolicyRef {
  const hash = "sha256:" + createHash("sha256").update(content).digest("hex");
  return { name: `helper:${basename(command)}`, version: hash.slice(7, 19), hash };
}

/** Runs the helper once; rejects with LegacyHelperError on timeout, exit status or bad JSON. */
export function runLegacyHelper(command: string, args: string[], input: LegacyHelperInput, timeoutMs = 10_000): Promise<LegacyHelperOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: childEnv() });
    let out = "";
    let err = "";
    let done = false;
    const finish = (e?: Error, v?: LegacyHelperOutput) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(v!);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(new LegacyHelperError(`helper ${command} did not finish within ${timeoutMs}ms`, err));
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.length > 1024 * 1024) {
        child.kill("SIGKILL");
        finish(new LegacyHelperError(`helper ${command} printed more than 1 MiB`, err));
      }
    });
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < 16_384) err += b.toString();
    });
    child.on("error", (e) => finish(new LegacyHelperError(`cannot run helper ${command}: ${e.message}`)));
    child.on("close", (code, signal) => {
      if (code !== 0) return finish(new LegacyHelperError(`helper ${command} exited with ${code ?? signal}${err ? `: ${err.trim().split("\n").slice(-3).join(" | ")}` : ""}`, err));
      try {
        const parsed = JSON.parse(out) as LegacyHelperOutput;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
        finish(undefined, parsed);
      } catch (e) {
        finish(new LegacyHelperError(`helper ${command} printed invalid JSON: ${(e as Error).message}`, err));
      }
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(JSON.stringify(input));
  });
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new LegacyHelperError(`helper output ${what} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== "string") throw new LegacyHelperError(`helper output ${what}.${k} is not a string`);
    out[k] = val;
  }
  return out;
}

/** Maps the helper's answer onto a Decision the flow applies like any policy decision. */
export function decisionFromHelper(o: LegacyHelperOutput, ref: PolicyRef, identity: string, validityDays = 365): Decision {
  const configuration = stringMap(o.configuration, "configuration");
  const hosts = configuration["plugin.choria.middleware_hosts"] ?? "";
  const brokers = hosts.split(",").map((s) => s.trim()).filter(Boolean);
  const base: Decision = {
    outcome: "configure",
    reason: o.msg ?? "",
    brokers,
    configuration,
    certificate: { validityDays, sans: [] },
    actionPolicies: stringMap(o.action_policies, "action_policies"),
    opaPolicies: stringMap(o.opa_policies, "opa_policies"),
    policy: ref,
    fired: [{ name: "helper", priority: 0, ruleSet: "", source: ref.name, why: o.msg ?? "helper decided" }],
  };
  if (o.defer) return { ...base, outcome: "defer", reason: o.msg || "helper deferred the node" };
  if (o.shutdown) return { ...base, outcome: "shutdown", reason: o.msg || "helper asked for a shutdown" };
  // passed through as given: signServerJwt checks the types and names a bad field in its error
  if (o.server_claims && typeof o.server_claims === "object" && !Array.isArray(o.server_claims)) base.serverClaims = o.server_claims as ServerClaims;
  else if (o.server_claims != null) throw new LegacyHelperError("helper output server_claims is not an object");
  if (o.certificate && o.ca) base.suppliedTls = { certificatePem: o.certificate, caPem: o.ca, ssldir: o.ssldir, keyPem: o.key || undefined };
  if (o.upgrade) return { ...base, outcome: "upgrade", upgradeVersion: o.upgrade };
  if (!configuration.identity) configuration.identity = identity;
  return base;
}
