import type { Decision, ServerClaims } from "../types/index.js";

/** A decision as text, the way `policy eval` prints it: what the daemon would send, then why. */
export function renderDecision(identity: string, d: Decision): string {
  const out: string[] = [];
  const row = (k: string, v: string) => out.push(`${(k + ":").padEnd(13)}${v}`);
  row("identity", identity);
  row("outcome", d.outcome);
  row("reason", d.reason);
  row("policy", `${d.policy.name} ${d.policy.version} ${d.policy.hash}`);
  if (d.approval) row("approval", `required: ${d.approval.reason}`);
  if (d.outcome === "upgrade") row("upgrade", `${d.upgradeVersion}${d.upgradeRepository ? ` from ${d.upgradeRepository}` : ""}`);
  if (d.outcome === "configure") {
    row("broker set", `${d.brokerSet} (${d.brokers.join(", ")})`);
    row("certificate", `valid ${d.certificate.validityDays} days, SANs: ${[identity, ...d.certificate.sans].join(", ")}`);
    out.push("configuration:");
    const width = Math.max(0, ...Object.keys(d.configuration).map((k) => k.length));
    for (const [k, v] of Object.entries(d.configuration)) out.push(`  ${k.padEnd(width)} = ${v.includes("\n") ? JSON.stringify(v) : v}`);
    if (Object.keys(d.actionPolicies).length) out.push(`action policies: ${Object.keys(d.actionPolicies).join(", ")}`);
    if (Object.keys(d.opaPolicies).length) out.push(`OPA policies: ${Object.keys(d.opaPolicies).join(", ")}`);
    if (d.serverClaims) out.push(...renderServerClaims(d.serverClaims));
  }
  out.push(d.fired.length ? "rules applied (merge order, winner first):" : "rules applied: none");
  for (const f of d.fired) {
    out.push(`  ${f.name} [priority ${f.priority}${f.ruleSet ? `, ${f.ruleSet}` : ""}] ${f.source}`);
    out.push(`      because ${f.why}`);
  }
  return out.join("\n");
}

/** only the claims the decision sets: the rest is the signer's default (see docs/credentials.md) */
function renderServerClaims(sc: ServerClaims): string[] {
  const rows: Array<[string, string]> = [];
  if (sc.ou !== undefined) rows.push(["ou", sc.ou]);
  if (sc.exp !== undefined) rows.push(["exp", `${sc.exp} (${new Date(sc.exp * 1000).toISOString()})`]);
  if (sc.collectives !== undefined) rows.push(["collectives", sc.collectives.join(", ")]);
  if (sc.pub_subjects !== undefined) rows.push(["pub_subjects", sc.pub_subjects.length ? sc.pub_subjects.join(", ") : "(none)"]);
  if (sc.permissions !== undefined) {
    const p = Object.entries(sc.permissions);
    rows.push(["permissions", p.length ? p.map(([k, v]) => (v ? k : `no ${k}`)).join(", ") : "(none)"]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return ["server JWT claims (features.ed25519):", ...rows.map(([k, v]) => `  ${k.padEnd(width)} = ${v}`)];
}
