/**
 * `choria-provisioner nodes`: a running daemon's view of every node it knows, and the
 * operator's actions on them, through its admin endpoint (GET /nodes, POST /nodes/{action}).
 * The token comes from the environment, never the command line (it would show in ps).
 */
import type { Command } from "commander";
import { Option } from "commander";
import { renderFired } from "../../policy/index.js";

interface Conn {
  admin?: string;
  tokenEnv: string;
}

interface FilterOptions {
  state?: string;
  identity?: string;
  policyVersion?: string;
  brokerSet?: string;
}

function fail(message: string, exitCode: number): never {
  throw Object.assign(new Error(message), { exitCode });
}

function baseUrl(o: Conn): string {
  const url = o.admin ?? process.env.CHORIA_PROVISIONER_ADMIN;
  if (!url) fail("name the daemon's admin endpoint: --admin http://127.0.0.1:PORT (or CHORIA_PROVISIONER_ADMIN); it is the admin.listen of its configuration", 2);
  return url.replace(/\/+$/, "");
}

async function call(o: Conn, path: string, init: RequestInit = {}): Promise<Response> {
  const url = baseUrl(o) + path;
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    fail(`cannot reach the admin endpoint ${url}: ${cause ?? (e as Error).message}`, 2);
  }
}

async function json(res: Response, what: string): Promise<unknown> {
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) fail(`${what}: HTTP ${res.status}: ${body.error ?? res.statusText}`, res.status === 404 ? 1 : 2);
  return body;
}

function conn(cmd: Command): Command {
  return cmd
    .option("--admin <url>", "the daemon's admin endpoint, e.g. http://127.0.0.1:8222 (default: $CHORIA_PROVISIONER_ADMIN)")
    .option("--token-env <name>", "environment variable holding the admin token", "CHORIA_PROVISIONER_ADMIN_TOKEN");
}

function filters(cmd: Command): Command {
  return cmd
    .option("--state <state>", "only nodes in this state (queued, in_flight, awaiting_approval, denied, failed, deferred, refused, provisioned, ...)")
    .option("--identity <glob>", "only identities matching this glob (* and ?)")
    .option("--policy-version <version>", "only nodes last decided by this policy version")
    .option("--broker-set <name>", "only nodes whose decision chose this broker set");
}

function filterOf(o: FilterOptions): Record<string, string> {
  const f: Record<string, string> = {};
  if (o.state) f.state = o.state;
  if (o.identity) f.identity = o.identity;
  if (o.policyVersion) f.policyVersion = o.policyVersion;
  if (o.brokerSet) f.brokerSet = o.brokerSet;
  return f;
}

interface NodeRow {
  identity: string;
  state: string;
  since: string;
  step?: string;
  hold?: { reason: string; until?: string };
  lastError?: string;
  policyVersion?: string;
  brokerSet?: string;
  serial?: string;
  reason?: string;
}

/** a fixed-width table; the last column (detail) is not padded */
export function nodesTable(rows: NodeRow[]): string {
  const cells = rows.map((n) => [n.identity, n.state + (n.step ? `(${n.step})` : ""), n.policyVersion ?? "-", n.brokerSet ?? "-", n.since, n.hold ? `${n.hold.reason}${n.hold.until ? ` until ${n.hold.until}` : ""}` : (n.lastError ?? n.reason ?? "")]);
  const head = ["IDENTITY", "STATE", "POLICY", "BROKERS", "SINCE", "DETAIL"];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(width[i]!))).join("  ").trimEnd();
  return [line(head), ...cells.map(line)].join("\n") + "\n";
}

interface NodeDetail extends NodeRow {
  policy?: string;
  outcome?: string;
  fired: Array<{ name: string; ruleSet: string; why: string; priority?: number; source?: string }>;
  timeline: Array<{ time: string; step: string; result: string }>;
  approval?: { status: string; since: string; reason: string; decision: { policy: { name: string; version: string }; brokerSet?: string; fired: NodeDetail["fired"] }; grant?: { by: string; from: string; at: string }; denial?: { by: string; from: string; at: string; reason: string } };
}

export function renderNode(n: NodeDetail): string {
  const out: string[] = [];
  const row = (k: string, v: string | undefined) => v !== undefined && v !== "" && out.push(`${(k + ":").padEnd(14)}${v}`);
  row("identity", n.identity);
  row("state", n.state + (n.step ? ` (step ${n.step})` : ""));
  row("since", n.since);
  if (n.hold) row("held", `${n.hold.reason}${n.hold.until ? ` until ${n.hold.until}` : ""}`);
  row("last error", n.lastError);
  row("outcome", n.outcome && `${n.outcome}: ${n.reason ?? ""}`);
  row("policy", n.policy && `${n.policy} ${n.policyVersion ?? ""}`);
  row("broker set", n.brokerSet);
  row("certificate", n.serial && `serial ${n.serial}`);
  if (n.approval) {
    const a = n.approval;
    row("approval", `${a.status} since ${a.since}: ${a.reason}`);
    if (a.grant) row("approved by", `${a.grant.by} from ${a.grant.from} at ${a.grant.at}`);
    if (a.denial) row("denied by", `${a.denial.by} from ${a.denial.from} at ${a.denial.at}: ${a.denial.reason}`);
  }
  const fired = n.fired.length ? n.fired : (n.approval?.decision.fired ?? []);
  out.push("", "decision (rules applied):", renderFired(fired));
  out.push("", "timeline:");
  for (const t of n.timeline) out.push(`  ${t.time}  ${t.step.padEnd(24)} ${t.result}`);
  return out.join("\n") + "\n";
}

interface ActionOptions extends Conn, FilterOptions {
  operator?: string;
  confirm?: boolean;
  allMatching?: boolean;
  reason?: string;
  format: "text" | "json";
}

async function act(action: string, ids: string[], o: ActionOptions): Promise<void> {
  const token = process.env[o.tokenEnv];
  if (!token) fail(`${action} needs the admin token in $${o.tokenEnv}`, 2);
  const filter = filterOf(o);
  if (o.allMatching && Object.keys(filter).length === 0 && action !== "approve") fail("--all-matching needs a filter (--state, --identity, --policy-version, --broker-set)", 2);
  if (!o.allMatching && Object.keys(filter).length) fail("filters select nodes only with --all-matching", 2);
  if (ids.length === 0 && !o.allMatching) fail(`name the nodes to ${action}, or --all-matching a filter`, 2);
  const body: Record<string, unknown> = { identities: ids };
  if (o.allMatching) body.filter = filter;
  if (o.operator) body.operator = o.operator;
  if (o.confirm) body.confirm = true;
  if (o.reason !== undefined) body.reason = o.reason;
  const res = await call(o, `/nodes/${action}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const r = (await json(res, action)) as { results: Array<{ identity: string; result: string; message: string; was?: unknown; now?: unknown }> };
  if (o.format === "json") process.stdout.write(JSON.stringify(r, null, 2) + "\n");
  else {
    for (const x of r.results) {
      process.stdout.write(`${x.identity}: ${x.result}: ${x.message}\n`);
      if (x.result === "changed") process.stdout.write(`  was: ${JSON.stringify(x.was)}\n  now: ${JSON.stringify(x.now)}\n`);
    }
    if (r.results.length === 0) process.stderr.write("no node matched\n");
  }
  if (r.results.some((x) => x.result !== "done")) process.exitCode = 1;
}

const format = () => new Option("--format <format>", "output format").choices(["text", "json"]).default("text");

export function register(program: Command): void {
  const nodes = program.command("nodes").description("a running daemon's nodes: list, show, approve, deny, retry, clear, forget (through its admin endpoint)");

  filters(conn(nodes.command("list")))
    .description("every node the daemon knows and its state")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json", "jsonl"]).default("table"))
    .action(async (o: Conn & FilterOptions & { format: "table" | "json" | "jsonl" }) => {
      const q = new URLSearchParams();
      const f = filterOf(o);
      if (f.state) q.set("state", f.state);
      if (f.identity) q.set("identity", f.identity);
      if (f.policyVersion) q.set("policy_version", f.policyVersion);
      if (f.brokerSet) q.set("broker_set", f.brokerSet);
      if (o.format === "jsonl") {
        q.set("format", "jsonl");
        const res = await call(o, `/nodes?${q}`);
        if (!res.ok) await json(res, "list");
        process.stdout.write(await res.text());
        return;
      }
      const r = (await json(await call(o, `/nodes?${q}`), "list")) as { count: number; nodes: NodeRow[] };
      process.stdout.write(o.format === "json" ? JSON.stringify(r, null, 2) + "\n" : nodesTable(r.nodes));
    });

  conn(nodes.command("show"))
    .description("one node: state, timeline, the decision with the rules that fired, certificate serial, approval")
    .argument("<identity>")
    .addOption(format())
    .action(async (id: string, o: Conn & { format: "text" | "json" }) => {
      const r = (await json(await call(o, `/nodes/${encodeURIComponent(id)}`), `show ${id}`)) as NodeDetail;
      process.stdout.write(o.format === "json" ? JSON.stringify(r, null, 2) + "\n" : renderNode(r));
    });

  const operator = (c: Command) => conn(c).option("--operator <name>", "who is acting, for the audit log (default: admin-token)").addOption(format());

  filters(operator(nodes.command("approve")))
    .description("configure nodes awaiting approval with their decision, re-checked against the policy in force")
    .argument("[identity...]")
    .option("--all-matching", "every node awaiting approval that the filters select", false)
    .option("--confirm", "approve although the decision changed since the node started waiting", false)
    .action((ids: string[], o: ActionOptions) => act("approve", ids, o));

  filters(operator(nodes.command("deny")))
    .description("refuse nodes awaiting approval; they stay held until cleared")
    .argument("[identity...]")
    .requiredOption("--reason <text>", "why, for the audit log")
    .option("--all-matching", "every node awaiting approval that the filters select", false)
    .action((ids: string[], o: ActionOptions) => act("deny", ids, o));

  for (const [name, what] of [
    ["retry", "re-queue failed, deferred or held nodes now"],
    ["clear", "release held nodes (refusal, denial or another hold); they are provisioned when next found"],
    ["forget", "drop nodes from the daemon's memory (and from the approval store)"],
  ] as const) {
    filters(operator(nodes.command(name)))
      .description(what)
      .argument("[identity...]")
      .option("--all-matching", "every node the filters select", false)
      .action((ids: string[], o: ActionOptions) => act(name, ids, o));
  }
}
