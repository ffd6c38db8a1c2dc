#!/usr/bin/env node
// Generates docs/configuration.md from schemas/provisioner-config.json.
//
//   node scripts/gen-config-docs.mjs          writes docs/configuration.md
//   node scripts/gen-config-docs.mjs --check  exits 1 when docs/configuration.md is out of date
//   node scripts/gen-config-docs.mjs --stdout prints the page
//
// The schema is the source of truth. A few keys have no `description` in the schema yet; the
// NOTES below fill those in (a schema description always wins) so that every key is described.
// test/docs/docs.test.ts runs renderConfigDocs() in memory and compares it with the page.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_PATH = join(ROOT, "schemas", "provisioner-config.json");
export const PAGE_PATH = join(ROOT, "docs", "configuration.md");

/** Descriptions for keys the schema does not describe yet (checked against src/config and src/daemon/start.ts). */
export const NOTES = {
  "tls": "TLS to the broker. Without this block the connection is plain text unless the broker requires TLS.",
  "tls.ca": "CA certificate (PEM) that verifies the broker's certificate.",
  "tls.cert": "Client certificate (PEM) presented to the broker.",
  "tls.key": "Private key (PEM) of the client certificate.",
  "queue": "The work queue between intake and the workers. A node is queued at most once.",
  "queue.max_size": "Nodes waiting for a worker. Past this, new nodes are not queued (`choria_provisioner_queue_rejected{reason=\"full\"}`) and are found again by intake.",
  "discovery": "Periodic broadcast discovery of nodes in provisioning mode.",
  "discovery.interval": "Time between discovery cycles. `0` turns periodic discovery off.",
  "discovery.timeout": "A discovery cycle ends this long after it started at the latest.",
  "discovery.quiet": "A discovery cycle also ends when no new reply has arrived for this long.",
  "discovery.at_start": "Run one discovery cycle as soon as the provisioner starts. A newly elected leader always runs one.",
  "intake": "Sources other than discovery that tell the provisioner a node is waiting.",
  "features": "Optional parts of the provisioning flow (names as in the reference provisioner).",
  "ca": "The signer used when `features.pki` is on.",
  "ca.type": "Which signer: the built-in CA, a cfssl server, or an external command.",
  "ca.profile": "cfssl: signing profile.",
  "ca.label": "cfssl: CA label (multirootca).",
  "ca.args": "exec: arguments passed to `ca.command` (no shell).",
  "ca.timeout": "cfssl/exec: time limit for one signing request.",
  "restart_splay": "`splay` (seconds) sent with `choria_provision#restart`: the node restarts after a random 0..splay seconds plus 2. A node treats `0` as 10.",
  "hold_after_restart": "A node told to restart (or upgrade) is not queued again for this long, so its restart is not mistaken for a new node. Shutdowns add 10 s. When the restart (or shutdown) went unanswered, the node is tried again after the hold: a node still in provisioning mode never got the request.",
  "upgrade_repository": "Repository URL sent with `choria_provision#release_update` when the policy's `upgrade` names none.",
  "rpc": "Timeouts and retries of the requests sent to a node.",
  "rpc.inventory_timeout": "Time limit for one `rpcutil#inventory` request.",
  "rpc.provision_timeout": "Upper bound of the time limit for one `choria_provision` request (per action: gencsr, configure and release_update 22 s; restart and shutdown 10 s).",
  "rpc.backoff_max": "Longest wait between two tries of a step. Waits start near 250 ms and double with each try, with jitter.",
  "admin": "The admin HTTP endpoint. See [operations](operations.md) and [security](security.md).",
  "audit": "Where decision records (one JSON object per node handled) go. Secret-looking configuration values are redacted.",
  "log": "Logging (pino JSON lines).",
  "log.level": "Lowest level logged.",
  "log.file": "Log to this file instead of stderr.",
  "helper_args": "Arguments passed to `helper`.",
  "helper_timeout": "The helper is killed (SIGKILL) and the node deferred when it runs longer than this (the reference's limit is 10 s).",
};

export const LOADER_PATH = join(ROOT, "src", "config", "load.ts");

/** Keys whose relative paths the loader resolves against the configuration file (every `rel(cfg.x)` in load.ts). */
export function fileRelativeKeys(loaderSource) {
  return [...new Set([...loaderSource.matchAll(/rel\(cfg\.([\w.]+)\)/g)].map((m) => m[1]))];
}

function deref(schema, node) {
  if (node && node.$ref) {
    const name = node.$ref.replace("#/definitions/", "");
    return { ...schema.definitions[name], ...Object.fromEntries(Object.entries(node).filter(([k]) => k !== "$ref")), __ref: name };
  }
  return node;
}

/** inline code; `|` is escaped, as it must be inside a table row */
function code(v) {
  return "`" + String(v).replace(/\|/g, "\\|") + "`";
}

function typeOf(schema, raw) {
  const n = deref(schema, raw);
  if (n.__ref === "duration") return "duration";
  if (n.enum) return "one of " + n.enum.map(code).join(", ");
  if (n.oneOf) return n.oneOf.map((o) => typeOf(schema, o)).join(" or ");
  if (n.type === "array") {
    const it = deref(schema, n.items ?? {});
    const inner = it.format === "regex" ? "regular expressions" : it.type ? `${it.type}s` : "values";
    return `list of ${inner}` + (n.minItems ? ` (at least ${n.minItems})` : "");
  }
  let t = n.type ?? "any";
  const range = [];
  if (n.minimum !== undefined && n.maximum !== undefined) range.push(`${n.minimum}–${n.maximum}`);
  else if (n.minimum !== undefined) range.push(`≥ ${n.minimum}`);
  else if (n.maximum !== undefined) range.push(`≤ ${n.maximum}`);
  if (n.minLength) range.push("not empty");
  if (n.pattern) range.push(`matching ${code(n.pattern)}`);
  if (range.length) t += ` (${range.join(", ")})`;
  return t;
}

function defaultOf(n) {
  if (n.default === undefined) return "—";
  return code(typeof n.default === "string" ? n.default : JSON.stringify(n.default));
}

function describe(path, n, relative = []) {
  let d = (n.description ?? NOTES[path] ?? "").replace(/\s+/g, " ").trim();
  if (relative.includes(path) && !/relative/i.test(d)) d += (d ? " " : "") + "A relative path is relative to the configuration file.";
  return d.replace(/\|/g, "\\|");
}

/** Every key of the schema as [dotted path, node], depth first in schema order. */
export function configKeys(schema) {
  const out = [];
  const walk = (props, prefix) => {
    for (const [k, raw] of Object.entries(props)) {
      const n = deref(schema, raw);
      const path = prefix ? `${prefix}.${k}` : k;
      out.push([path, n]);
      if (n.type === "object" && n.properties) walk(n.properties, path);
    }
  };
  walk(schema.properties, "");
  return out;
}

function table(schema, props, prefix, relative) {
  const rows = ["| key | type | default | description |", "|---|---|---|---|"];
  for (const [k, raw] of Object.entries(props)) {
    const n = deref(schema, raw);
    const path = prefix ? `${prefix}.${k}` : k;
    const isObj = n.type === "object" && n.properties;
    const type = isObj ? `object, see [${path}](#${path.replace(/[^a-z0-9_-]/gi, "").toLowerCase()})` : typeOf(schema, n);
    rows.push(`| ${code(path)} | ${type} | ${isObj ? "—" : defaultOf(n)} | ${describe(path, n, relative)} |`);
  }
  return rows.join("\n");
}

/** `if` ... `then` rules between keys (schema `allOf`), as sentences. */
function conditionals(schema) {
  const flat = (props, prefix = "") => {
    const out = [];
    for (const [k, v] of Object.entries(props ?? {})) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v && "const" in v) out.push([path, v.const]);
      else if (v && v.properties) out.push(...flat(v.properties, path));
    }
    return out;
  };
  const lines = [];
  for (const c of schema.allOf ?? []) {
    if (!c.if || !c.then) continue;
    const when = flat(c.if.properties).map(([p, v]) => `${code(p)} is ${code(JSON.stringify(v))}`).join(" and ");
    const needs = [];
    if (c.then.required?.length) needs.push(c.then.required.map(code).join(", ") + (c.then.required.length > 1 ? " are required" : " is required"));
    for (const [p, v] of flat(c.then.properties)) needs.push(`${code(p)} must be ${code(JSON.stringify(v))}`);
    if (when && needs.length) lines.push(`- When ${when}: ${needs.join("; ")}.`);
  }
  return lines;
}

/** The page, from the schema and the loader's source (for which paths are file-relative). */
export function renderConfigDocs(schema, loaderSource) {
  const relative = fileRelativeKeys(loaderSource);
  const relPlain = relative.filter((k) => k !== "helper");
  const duration = schema.definitions?.duration?.oneOf?.find((o) => o.type === "string")?.pattern;
  const parts = [];
  parts.push(`<!-- Generated by scripts/gen-config-docs.mjs from schemas/provisioner-config.json. Do not edit: run \`node scripts/gen-config-docs.mjs\`. -->

# Configuration reference

\`choria-provisioner run --config FILE\` reads one YAML file. A complete example is
[contrib/provisioner.yaml](../contrib/provisioner.yaml). Without \`--config\`, every key takes its default.

- The file is checked against \`schemas/provisioner-config.json\` before anything starts. Unknown keys
  are errors. Each problem is reported as \`file:line:col: key: message\`, and \`run\` exits with code 2.
  Put \`# yaml-language-server: $schema=<path>/schemas/provisioner-config.json\` on the first line for
  completion and checking in editors; the schemas ship in the package, so \`<path>\` is the installed
  package, e.g. \`/opt/choria-provisioner/lib/node_modules/choria-provisioner\` (see
  [policy language](policy-language.md#files)).
- Flags of \`run\` override the file: \`--broker\`, \`--policies\`, \`--rules\`, \`--policy\`,
  \`--ca-dir\` (also sets \`ca.type: builtin\`), \`--workers\`, \`--site\`, \`--identity\`, \`--admin\`,
  \`--audit\`, \`--record\`, \`--log-level\`, \`--discovery-interval\`, \`--no-pki\`.
- Relative paths in ${relPlain.map(code).join(", ")} are resolved against the directory of the
  configuration file${relative.includes("helper") ? "; so is `helper` when it starts with `./` or `../`" : ""}. Other paths
  are used as written: give them absolute.
- Durations are strings such as \`500ms\`, \`10s\`, \`5m\`, \`1h\`${duration ? ` (pattern \`${duration}\`)` : ""}, or integers (milliseconds).
- Secrets are never in this file. Environment variables hold them; the \`*_env\` keys rename the variables:

  | variable (default name) | renamed by | holds |
  |---|---|---|
  | \`CHORIA_PROVISIONER_TOKEN\` | \`token_env\` | the provisioning token sent to nodes |
  | \`CHORIA_PROVISIONER_BROKER_PASSWORD\` | \`broker_password_env\` | the NATS password of \`broker_user\` |
  | (none) | \`broker_token_env\` | a NATS auth token |
  | \`CHORIA_PROVISIONER_ADMIN_TOKEN\` | \`admin.token_env\` | the bearer token for \`POST /pause\` and \`POST /resume\` |`);

  const rules = conditionals(schema);
  if (rules.length) parts.push("Keys that depend on each other:\n\n" + rules.join("\n"));

  parts.push("## Top-level keys\n\n" + table(schema, schema.properties, "", relative));
  for (const [path, n] of configKeys(schema)) {
    if (n.type === "object" && n.properties) {
      const intro = describe(path, n, relative);
      parts.push(`## ${path}\n\n${intro ? intro + "\n\n" : ""}${table(schema, n.properties, path, relative)}`);
    }
  }
  return parts.join("\n\n") + "\n";
}

export function loadInputs() {
  return { schema: JSON.parse(readFileSync(SCHEMA_PATH, "utf8")), loaderSource: readFileSync(LOADER_PATH, "utf8") };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { schema, loaderSource } = loadInputs();
  const missing = configKeys(schema).filter(([p, n]) => !(n.description || NOTES[p])).map(([p]) => p);
  if (missing.length) console.error(`gen-config-docs: no description for ${missing.join(", ")} (add one to the schema)`);
  const page = renderConfigDocs(schema, loaderSource);
  if (process.argv.includes("--stdout")) process.stdout.write(page);
  else if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(PAGE_PATH, "utf8");
    } catch {}
    if (current !== page) {
      console.error("docs/configuration.md is out of date: run node scripts/gen-config-docs.mjs");
      process.exit(1);
    }
  } else {
    writeFileSync(PAGE_PATH, page);
    console.error(`wrote ${PAGE_PATH}`);
  }
}
