import type { CertificateProfile, Decision, Outcome, ServerClaims } from "../types/index.js";
import { DEFAULT_VALIDITY_DAYS, RESERVED_KEYS, SERVER_PERMISSIONS, type CompiledPolicy, type CompiledRule, type CompiledThen, type ServerPermission } from "./model.js";
import { TemplateError, type CompiledTemplate } from "./template.js";

export type MergedDecision = Omit<Decision, "policy" | "fired">;

export interface MergeResult {
  decision: MergedDecision;
  /** fired rules whose effects were applied, in merge order (winner first) */
  applied: CompiledRule[];
  /** fired rules left out because a higher-priority rule had `stop` */
  stopped: CompiledRule[];
  stoppedBy?: CompiledRule;
}

/**
 * The merge order, documented in docs/policy-language.md:
 *  1. fired rules are ordered by priority (high first); at equal priority the rule declared
 *     later wins (policy rules come after included rule sets, so they override them);
 *  2. a fired rule with `stop: true` drops every fired rule of lower priority;
 *  3. every scalar (outcome, brokerSet, validity, upgrade) and every configuration /
 *     action policy / OPA policy key, server claim and server permission takes the value of
 *     the first rule in that order that sets it, then the policy `defaults`; certificate SANs
 *     are the union of all;
 *  4. the safe defaults are applied last and cannot be overridden.
 * Only winning values are rendered, so a template on an overridden value cannot defer a node.
 */
export function mergeRules(policy: CompiledPolicy, fired: CompiledRule[], ctx: Record<string, unknown>, identity: string): MergeResult {
  const ordered = [...fired].sort(byMergeOrder);
  const stopRule = ordered.find(isStop);
  const applied = stopRule ? ordered.filter((r) => r.priority >= stopRule.priority) : ordered;
  const stopped = stopRule ? ordered.filter((r) => r.priority < stopRule.priority) : [];
  const layers: Layer[] = applied.map(ruleLayer);
  layers.push({ then: policy.defaults, rule: undefined });

  const result = (decision: MergedDecision): MergeResult => (stopRule ? { decision, applied, stopped, stoppedBy: stopRule } : { decision, applied, stopped });
  try {
    const outcomeLayer = layers.find((l) => l.then.outcome !== undefined);
    const outcome: Outcome = outcomeLayer?.then.outcome ?? "configure";
    const validityDays = layers.find((l) => l.then.validityDays !== undefined)?.then.validityDays ?? DEFAULT_VALIDITY_DAYS;

    if (outcome === "defer" || outcome === "shutdown") {
      const d = base(outcome, reasonOf(outcomeLayer, ctx) ?? `${outcome} by ${layerName(outcomeLayer!)}`, validityDays);
      // only the rule that deferred the node says when to look at it again
      if (outcome === "defer" && outcomeLayer?.then.retryAfter !== undefined) d.retryAfterMs = outcomeLayer.then.retryAfter * 1000;
      return result(d);
    }
    if (outcome === "upgrade") {
      const up = layers.find((l) => l.then.upgrade)!.then.upgrade!;
      const d = base("upgrade", reasonOf(outcomeLayer, ctx) ?? `upgrade to ${up.version} by ${layerName(outcomeLayer!)}`, validityDays);
      d.upgradeVersion = up.version;
      if (up.repository) d.upgradeRepository = up.repository;
      return result(d);
    }

    const brokerLayer = layers.find((l) => l.then.brokerSet !== undefined);
    if (!brokerLayer) {
      const names = applied.map((r) => r.name);
      return result(base("defer", `no broker set chosen for this node (rules applied: ${names.length ? names.join(", ") : "none"}); a node is never configured without brokers`, validityDays));
    }
    const brokerSet = brokerLayer.then.brokerSet!;
    const brokers = policy.brokerSets[brokerSet] ?? [];
    if (brokers.length === 0) return result(base("defer", `broker set "${brokerSet}" has no brokers`, validityDays));

    const configuration: Record<string, string> = {};
    const actionPolicies: Record<string, string> = {};
    const opaPolicies: Record<string, string> = {};
    const sans: string[] = [];
    for (const l of layers) {
      for (const [k, t] of l.then.configuration) if (!(k in configuration)) configuration[k] = render(t, ctx, l, "configuration", k);
      for (const [k, v] of l.then.actionPolicies) if (!(k in actionPolicies)) actionPolicies[k] = v;
      for (const [k, v] of l.then.opaPolicies) if (!(k in opaPolicies)) opaPolicies[k] = v;
      for (const t of l.then.sans) {
        const s = render(t, ctx, l, "certificate SAN");
        if (s !== identity && !sans.includes(s)) sans.push(s);
      }
    }
    // the safe defaults: last, so no rule can remove them
    configuration["plugin.choria.server.provision"] = "false";
    configuration["identity"] = identity;
    configuration["plugin.choria.middleware_hosts"] = brokers.join(",");

    const serverClaims = mergeServerClaims(layers, ctx);

    const certificate: CertificateProfile = { validityDays, sans };
    const explicitReason = reasonOf(outcomeLayer, ctx);
    const d: MergedDecision = {
      outcome: "configure",
      reason: explicitReason ?? `configure with broker set ${brokerSet} (chosen by ${layerName(brokerLayer)})`,
      brokerSet,
      brokers: [...brokers],
      configuration: sortKeys(configuration, configurationKeys(policy)),
      certificate,
      actionPolicies,
      opaPolicies,
    };
    if (serverClaims) d.serverClaims = serverClaims;
    const approvalLayer = layers.find((l) => l.then.approval);
    if (approvalLayer) {
      const r = approvalLayer.then.approval!.reason;
      // approval: required reads the asking rule's own reason, then the decision's
      d.approval = { reason: r ? render(r, ctx, approvalLayer, "approval reason") : (reasonOf(approvalLayer, ctx) ?? explicitReason ?? `approval required by ${layerName(approvalLayer)}`) };
    }
    return result(d);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    return result(base("defer", `cannot build the decision: ${e.message}`, DEFAULT_VALIDITY_DAYS));
  }
}

/** the keys the merge sets itself, after every layer */
const BUILT_IN_KEYS = ["plugin.choria.server.provision", "identity", "plugin.choria.middleware_hosts"];

/**
 * Where each configuration value of a decision came from: a rule (name and file:line:col), the
 * policy's `defaults` (file:line:col of the key) or the merge itself. Only for explanations:
 * mergeRules does not track it, so evaluation stays as fast as before.
 */
export function configurationOrigins(policy: CompiledPolicy, applied: CompiledRule[], configuration: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(configuration)) {
    if (BUILT_IN_KEYS.includes(k)) {
      out[k] = k === "plugin.choria.middleware_hosts" ? "the broker set (always set)" : "built in (always set)";
      continue;
    }
    const rule = applied.find((r) => r.then.configuration.some(([key]) => key === k));
    if (rule) out[k] = `rule ${rule.name} (${rule.source})`;
    else if (policy.defaultSources[k]) out[k] = `policy defaults (${policy.defaultSources[k]})`;
  }
  return out;
}

/*
 * Helpers at module level rather than closures in mergeRules, and layer names built only for
 * messages: this runs once per evaluated node, and under tsx every named closure also costs a
 * __name wrapper.
 */

/** a rule's `then` or the policy defaults (no rule) */
interface Layer {
  then: CompiledThen;
  rule?: CompiledRule;
}

const byMergeOrder = (a: CompiledRule, b: CompiledRule) => b.priority - a.priority || b.index - a.index;
const isStop = (r: CompiledRule) => r.stop;
const ruleLayer = (r: CompiledRule): Layer => ({ then: r.then, rule: r });
const layerName = (l: Layer) => (l.rule ? `rule ${l.rule.name}` : "defaults");

function render(t: CompiledTemplate, ctx: Record<string, unknown>, l: Layer, what: string, key?: string): string {
  try {
    return t.render(ctx);
  } catch (e) {
    if (e instanceof TemplateError) throw new TemplateError(`${layerName(l)} ${what}${key === undefined ? "" : ` ${key}`}: ${e.message}`);
    throw e;
  }
}

/**
 * Each claim, and each permission on its own, from the first layer that sets it. The result has
 * a fixed key order (Go's claim order) whatever the rule order, so printed decisions and diffs
 * are stable. undefined when no layer sets a claim: the signer's defaults then apply unchanged.
 */
function mergeServerClaims(layers: Layer[], ctx: Record<string, unknown>): ServerClaims | undefined {
  let ou: Layer | undefined;
  let exp: number | undefined;
  let collectives: Layer | undefined;
  let pubSubjects: Layer | undefined;
  let permissions: Partial<Record<ServerPermission, boolean>> | undefined;
  for (const l of layers) {
    const sc = l.then.serverClaims;
    if (!sc) continue;
    if (!ou && sc.ou) ou = l;
    if (exp === undefined && sc.exp !== undefined) exp = sc.exp;
    if (!collectives && sc.collectives) collectives = l;
    if (!pubSubjects && sc.pub_subjects) pubSubjects = l;
    for (const [k, v] of sc.permissions) {
      permissions ??= {};
      if (!(k in permissions)) permissions[k] = v;
    }
  }
  if (!ou && exp === undefined && !collectives && !pubSubjects && !permissions) return undefined;
  const out: ServerClaims = {};
  if (ou) out.ou = claimText(ou.then.serverClaims!.ou!, ctx, ou, "ou");
  if (exp !== undefined) out.exp = exp;
  if (collectives) out.collectives = collectives.then.serverClaims!.collectives!.map((t) => claimText(t, ctx, collectives!, "collectives"));
  if (pubSubjects) out.pub_subjects = pubSubjects.then.serverClaims!.pub_subjects!.map((t) => claimText(t, ctx, pubSubjects!, "pub_subjects"));
  if (permissions) {
    const ordered: Partial<Record<ServerPermission, boolean>> = {};
    for (const k of SERVER_PERMISSIONS) if (k in permissions) ordered[k] = permissions[k]!;
    out.permissions = ordered;
  }
  return out;
}

/**
 * An empty collective is refused by the signer, and an empty ou or subject is never what was
 * meant: caught here so `policy eval` shows the deferral the daemon would otherwise only hit
 * when it signs.
 */
function claimText(t: CompiledTemplate, ctx: Record<string, unknown>, l: Layer, claim: string): string {
  const s = render(t, ctx, l, `serverClaims.${claim}`);
  if (s === "") throw new TemplateError(`${layerName(l)} serverClaims.${claim}: renders to an empty string${t.paths.length ? ` (from ${t.paths.join(", ")})` : ""}`);
  return s;
}

const reasonOf = (l: Layer | undefined, ctx: Record<string, unknown>) => (l?.then.reason ? render(l.then.reason, ctx, l, "reason") : undefined);

function base(o: Outcome, reason: string, validityDays: number): MergedDecision {
  return {
    outcome: o,
    reason,
    brokers: [],
    configuration: {},
    certificate: { validityDays, sans: [] },
    actionPolicies: {},
    opaPolicies: {},
  };
}

const keysOfPolicy = new WeakMap<CompiledPolicy, string[]>();

/** every configuration key the policy can produce, sorted; computed once per compiled policy */
function configurationKeys(policy: CompiledPolicy): string[] {
  let keys = keysOfPolicy.get(policy);
  if (!keys) {
    const all = new Set<string>(Object.keys(RESERVED_KEYS));
    for (const then of [policy.defaults, ...policy.rules.map((r) => r.then)]) for (const [k] of then.configuration) all.add(k);
    keys = [...all].sort();
    keysOfPolicy.set(policy, keys);
  }
  return keys;
}

/**
 * stable key order so printed decisions and diffs do not depend on rule order: `o`'s keys in
 * sorted order, picked from the policy's sorted key list instead of sorting them per node
 */
function sortKeys(o: Record<string, string>, sorted: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let picked = 0;
  for (const k of sorted) {
    if (Object.prototype.hasOwnProperty.call(o, k)) {
      out[k] = o[k]!;
      picked++;
    }
  }
  let present = 0;
  for (const _ in o) present++;
  if (picked === present) return out;
  // a key outside the policy's list (cannot happen today): sort for real
  const all: Record<string, string> = {};
  for (const k of Object.keys(o).sort()) all[k] = o[k]!;
  return all;
}
