/**
 * Leader election shared with the real reference provisioner (choria-io/provisioner) on a real
 * Choria Broker: one of ours and one Go provisioner campaign for the same key; each stands by
 * while the other leads, and each takes over when the other is killed.
 *
 * The Go module proxy serves no version of choria-io/provisioner, so this test runs only where
 * CHORIA_REFERENCE_PROVISIONER names a reference binary built by other means (docs/interop.md);
 * everywhere else it is skipped with that reason.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { REAL_SKIP, RealLab, TOKEN, homePolicy, pollUntil } from "../helpers/real-choria.js";
import { REPO } from "../helpers/daemon.js";

const REFERENCE = process.env.CHORIA_REFERENCE_PROVISIONER;
const SKIP = REAL_SKIP ?? (REFERENCE ? undefined : "CHORIA_REFERENCE_PROVISIONER is not set: the module proxy serves no choria-io/provisioner to build (docs/interop.md)");

let lab: RealLab;
after(async () => {
  await lab?.stop();
});

interface Reference {
  child: ChildProcess;
  log(): string;
  kill(): Promise<void>;
}

async function startReference(): Promise<Reference> {
  const cert = await lab.issue("provisioner-ref.lab", { client: true, rsa: true, dns: ["provisioner-ref.lab"] });
  const dir = lab.root;
  const choriaConf = join(dir, "ref-client.conf");
  writeFileSync(
    choriaConf,
    [
      "identity = provisioner-ref.lab",
      `plugin.choria.middleware_hosts = ${lab.provisioning.url}`,
      "plugin.choria.use_srv = false",
      "plugin.security.provider = file",
      `plugin.security.file.certificate = ${cert.cert}`,
      `plugin.security.file.key = ${cert.key}`,
      `plugin.security.file.ca = ${lab.caFile}`,
    ].join("\n") + "\n",
  );
  const logFile = join(dir, "ref.log");
  const conf = join(dir, "ref-provisioner.yaml");
  writeFileSync(
    conf,
    [
      "workers: 2",
      "interval: 1h",
      `logfile: ${logFile}`,
      "loglevel: debug",
      `helper: ${join(REPO, "bench", "legacy-helper.sh")}`,
      `token: ${TOKEN}`,
      "site: lab",
      `broker_provisioning_password: ${lab.brokerPassword}`,
      "leader_election: true",
      "features:",
      "  pki: false",
    ].join("\n") + "\n",
  );
  writeFileSync(logFile, "");
  const child = spawn(REFERENCE!, ["run", "--config", conf, "--choria-config", choriaConf], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b) => (out = (out + b).slice(-20000)));
  child.stderr!.on("data", (b) => (out = (out + b).slice(-20000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const ref: Reference = {
    child,
    log: () => `${out}\n${readFileSync(logFile, "utf8")}`,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  lab.onStop(() => ref.kill());
  return ref;
}

async function ours(identity: string): Promise<TestDaemon> {
  const pol = lab.writePolicy("lab", homePolicy(lab));
  const d = await startTestDaemon(
    lab.provisioning.url,
    { ...(await lab.daemonBroker()), ...pol, identity, ca: { dir: lab.caDir }, leader_election: true, ha: { api_prefix: "choria.streams" } },
    {},
    lab.daemonEnv(),
  );
  lab.onStop(() => d.stop(3000));
  return d;
}

const refLeads = (r: Reference): boolean => /Became leader after winning election/.test(r.log());

test("our daemon and the real reference provisioner share one election on a Choria Broker; each takes over when the other is killed", { skip: SKIP }, async () => {
  lab = await RealLab.start({ broker: "choria" });

  // ours first: it wins, and the reference, started while it leads, stands by
  const a = await ours("provisioner-a.lab");
  await pollUntil(() => a.provisioner.role === "leader", 20_000, "our daemon to lead");
  const ref = await startReference();
  await pollUntil(() => /Starting leader election against 'provisioner'/.test(ref.log()), 20_000, "the reference to campaign");
  // the reference campaigns after a splay of up to 5 s; "not leading" has no event, so give it that long
  await new Promise((r) => setTimeout(r, 6_000));
  assert.equal(refLeads(ref), false, "the reference stands by while ours leads");
  assert.equal(a.provisioner.role, "leader");

  // ours stops; on a Choria Broker its resignation (a delete marker) frees the key no sooner than
  // its expiry, so the reference wins after the TTL (10 s in the lab) plus its own campaign
  // backoff of up to 20 s
  await a.stop(0);
  await pollUntil(() => refLeads(ref), 60_000, "the reference to take over");
  assert.ok(refLeads(ref), "the reference leads");

  // a new instance of ours stands by while the reference leads...
  const b = await ours("provisioner-b.lab");
  await new Promise((r) => setTimeout(r, 12_000)); // more than a TTL: "did not win" has no event
  assert.equal(b.provisioner.role, "standby", "ours stands by while the reference leads");

  // ...and takes over when the reference is killed
  await ref.kill();
  await pollUntil(() => b.provisioner.role === "leader", 40_000, "our daemon to take over from the killed reference");
});
