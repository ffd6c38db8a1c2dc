/** Arrival tests: policies whose broker sets are real local brokers, and the daemon's arrival verdicts as they come. */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DaemonHandle } from "../../src/daemon/start.js";
import { generateFacts } from "../../src/sim/index.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import type { ArrivalRecord, ArrivalResult } from "../../src/types/index.js";
import { Waiters } from "../helpers/waiters.js";

/**
 * A policy directory: every node is configured into `defaultSet`, except that each rule in
 * `byCountry` sends a country's nodes to another set.
 */
export function writeHomePolicy(o: { dir?: string; version: string; sets: Record<string, string[]>; defaultSet: string; byCountry?: Record<string, string>; validityDays?: number }): { policies: string; rules: string } {
  const root = o.dir ?? mkdtempSync(join(tmpdir(), "cp-arrival-pol-"));
  const policies = join(root, "policies");
  const rules = join(root, "rules");
  mkdirSync(policies, { recursive: true });
  mkdirSync(rules, { recursive: true });
  const sets = Object.entries(o.sets).map(([k, v]) => `  ${k}: [${v.join(", ")}]`);
  const countryRules = Object.entries(o.byCountry ?? {}).map(([country, set]) => `  - name: country-${country}
    conditions:
      all:
        - { fact: facts.country, operator: equal, value: ${country} }
    then:
      brokerSet: ${set}`);
  writeFileSync(
    join(policies, "homes.yaml"),
    `apiVersion: choria-provisioner/v1
kind: Policy
metadata:
  name: homes
  version: "${o.version}"
brokerSets:
${sets.join("\n")}
defaults:
  brokerSet: ${o.defaultSet}${o.validityDays ? `\n  certificate: { validityDays: ${o.validityDays} }` : ""}
  configuration:
    collectives: mcollective
    main_collective: mcollective
rules:
${countryRules.length ? countryRules.join("\n") : "  []"}
`,
  );
  return { policies, rules };
}

export interface ArrivalWatch {
  records: ArrivalRecord[];
  /** the latest verdict per identity */
  latest(): Map<string, ArrivalRecord>;
  count(result: ArrivalResult): number;
  until(pred: (w: ArrivalWatch) => boolean, timeoutMs: number, what: string): Promise<void>;
}

export function watchArrivals(d: DaemonHandle): ArrivalWatch {
  if (!d.arrival) throw new Error("the daemon has no arrival tracking");
  const waiters = new Waiters();
  const w: ArrivalWatch = {
    records: [],
    latest() {
      const m = new Map<string, ArrivalRecord>();
      for (const r of w.records) m.set(r.identity, r);
      return m;
    },
    count: (result) => w.records.filter((r) => r.result === result).length,
    until: (pred, timeoutMs, what) =>
      waiters.until(
        () => pred(w),
        () => undefined,
        timeoutMs,
        () => {
          const by: Record<string, number> = {};
          for (const r of w.records) by[r.result] = (by[r.result] ?? 0) + 1;
          return new Error(`timed out after ${timeoutMs} ms waiting for ${what}; arrival verdicts so far: ${JSON.stringify(by)}; status: ${JSON.stringify({ ...d.arrival!.status(), lost: undefined })}`);
        },
      ),
  };
  d.arrival.on("arrival", (r) => {
    w.records.push(r);
    waiters.notify();
  });
  return w;
}

export const TOKEN = "s3cret";

/** what to stop after the file's tests, last started first */
export const cleanup: Array<() => Promise<unknown>> = [];
export async function runCleanup(): Promise<void> {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  cleanup.length = 0;
}

export function byResult(rs: ArrivalRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) out[r.result] = (out[r.result] ?? 0) + 1;
  return out;
}

/** a nats-server stopped after the file's tests */
export async function nats(): Promise<LocalNatsServer> {
  const s = await startNatsServer();
  cleanup.push(() => s.stop());
  return s;
}

/** half the fleet in the us, half in nl, whatever the seed */
export function halfUs(seed: number): (identity: string, index: number) => Record<string, unknown> {
  return (identity, index) => ({ ...generateFacts(seed, identity), country: index % 2 === 0 ? "us" : "nl" });
}

/** a self-signed RSA client certificate (what signs requests to nodes at home; the simulator checks signature and CN, not the CA) */
export function clientCertificate(cn: string): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "cp-client-"));
  const cert = join(dir, "client.pem");
  const key = join(dir, "client-key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", `/CN=${cn}`, "-days", "1"], { stdio: "ignore" });
  return { cert, key };
}
