/**
 * One whole daemon (the real assembly, through the test helper) in its own process, so the
 * failover tests can SIGKILL it: no drain, no key delete, no claim release.
 * argv: brokerUrl configJson. Prints JSON lines on stdout:
 *   {ready, pid, admin} once started, {role} on every role change, {rec, o} per decision record,
 *   {ledgerSeq} each time the shared ledger's replica applied the stream up to that sequence.
 * SIGTERM stops it cleanly (drain, resign) and exits 0.
 */
import { startTestDaemon } from "../helpers/daemon.js";

const [url, cfgJson] = process.argv.slice(2);
const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + "\n");

const d = await startTestDaemon(url, JSON.parse(cfgJson), {}, { CHORIA_PROVISIONER_TOKEN: "s3cret" });
// observe role changes where HA applies them, so the parent needs no polling
const p = d.provisioner;
const setActive = p.setActive.bind(p);
p.setActive = (active: boolean, role: string) => {
  const prev = p.role;
  setActive(active, role);
  if (role !== prev) out({ role, t: Date.now() });
};
d.provisioner.on("record", (r) => out({ rec: r.identity, o: r.outcome }));
d.ledgerReplica?.on("applied", (a) => out({ ledgerSeq: a.lastSeq }));
out({ ready: true, pid: process.pid, admin: d.admin.url, role: p.status().role, t: Date.now() });
process.on("SIGTERM", () => {
  void d.stop(5000).then(() => process.exit(0));
});
