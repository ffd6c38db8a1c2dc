/**
 * Loads the daemon configuration: YAML -> schema validation with file:line:col for every
 * problem -> CLI overrides -> resolved settings with defaults and secrets from the
 * environment. Secrets are resolved here and never logged.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import AjvModule from "ajv";
import addFormatsModule from "ajv-formats";
import { LineCounter, parseDocument, isNode } from "yaml";
import { parseDuration } from "./duration.js";
import type { ConfigFile } from "./types.js";

// Throughput is at most workers / time per node (Little's law): at ~65 ms a node on the bench
// machine, 100 workers capped a daemon near 92k nodes/min, and more flows in flight also share
// each socket write. 200 gave 7% more nodes/min at 50k nodes with less CPU per node.
export const DEFAULT_WORKERS = 200;

const Ajv = AjvModule as unknown as typeof AjvModule.default;
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export const CONFIG_SCHEMA_PATH = fileURLToPath(new URL("../../schemas/provisioner-config.json", import.meta.url));

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

let validator: ReturnType<InstanceType<typeof Ajv>["compile"]> | undefined;
function validate(doc: unknown) {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, "utf8")));
  }
  const ok = validator(doc);
  return ok ? [] : (validator.errors ?? []);
}

export function parseConfigText(text: string, file: string): ConfigFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const pos = (offset: number) => lc.linePos(offset);
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ file, ...pos(e.pos[0]), message: e.message.split("\n")[0] })));
  }
  const data = (doc.toJS() ?? {}) as ConfigFile;
  const errors = validate(data);
  if (errors.length) {
    throw new ConfigError(
      errors.map((e) => {
        const path = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
        const node = doc.getIn(path, true);
        const p = isNode(node) && node.range ? pos(node.range[0]) : { line: 1, col: 1 };
        const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, ".") : "(top level)";
        const extra = e.keyword === "additionalProperties" ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : e.keyword === "enum" ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")})` : "";
        return { file, ...p, message: `${where}: ${e.message}${extra}` };
      }),
    );
  }
  return data;
}

export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError([{ file, line: 0, col: 0, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  const cfg = parseConfigText(text, file);
  // relative paths in the file are relative to the file, as users expect
  const base = dirname(resolve(file));
  const rel = (p?: string) => (p ? resolve(base, p) : p);
  cfg.policies = rel(cfg.policies);
  cfg.rules = rel(cfg.rules);
  cfg.policy_tests = rel(cfg.policy_tests);
  cfg.record = rel(cfg.record);
  if (cfg.helper && (cfg.helper.startsWith('./') || cfg.helper.startsWith('../'))) cfg.helper = rel(cfg.helper);
  if (cfg.ca) {
    cfg.ca.dir = rel(cfg.ca.dir);
    cfg.ca.ca_file = rel(cfg.ca.ca_file);
  }
  if (cfg.audit) cfg.audit.file = rel(cfg.audit.file);
  cfg.broker_creds = rel(cfg.broker_creds);
  if (cfg.tls) {
    cfg.tls.ca = rel(cfg.tls.ca);
    cfg.tls.cert = rel(cfg.tls.cert);
    cfg.tls.key = rel(cfg.tls.key);
  }
  // jwt_verify_cert is a path or, when no such file exists, a hex ed25519 key: leave hex alone
  if (cfg.jwt_verify_cert && !/^[0-9a-fA-F]{64}$/.test(cfg.jwt_verify_cert.trim())) cfg.jwt_verify_cert = rel(cfg.jwt_verify_cert);
  cfg.jwt_signing_key = rel(cfg.jwt_signing_key);
  cfg.jwt_signing_token = rel(cfg.jwt_signing_token);
  cfg.client_jwt = rel(cfg.client_jwt);
  if (cfg.log) cfg.log.file = rel(cfg.log.file);
  return cfg;
}

/** Settings with every default applied; durations in ms; secrets read from the environment. */
export interface Settings {
  site: string;
  identity: string;
  brokers: string[];
  brokerUser?: string;
  brokerPassword?: string;
  brokerToken?: string;
  brokerCreds?: string;
  tls?: ConfigFile["tls"];
  token: string;
  policiesDir: string;
  rulesDir?: string;
  policy?: string;
  testOnReload: boolean;
  /** where test_on_reload looks for PolicyTest files (undefined: the lookup of locatePolicyTests) */
  testsDir?: string;
  watch: boolean;
  workers: number;
  queueMaxSize: number;
  queueMaxWaitMs: number;
  discoveryIntervalMs: number;
  discoveryTimeoutMs: number;
  discoveryQuietMs: number;
  discoverAtStart: boolean;
  lifecycleComponent: string;
  /** also queue nodes on alive events of lifecycleComponent */
  aliveEvents: boolean;
  registration: boolean;
  legacyRegistration: boolean;
  pki: boolean;
  /** features.jwt, also on when ed25519 is */
  jwt: boolean;
  /** features.ed25519: pki is off with it */
  ed25519: boolean;
  /** path of an RSA PEM / hex ed25519 key file, or a hex ed25519 public key */
  jwtVerifyCert?: string;
  /** file holding the server JWT signing key (hex ed25519 seed or PEM) */
  jwtSigningKeyFile?: string;
  /** file holding a chain-issuer client JWT to chain server JWTs to */
  jwtSigningTokenFile?: string;
  serverJwtValidityMs: number;
  /** Choria protocol version spoken to nodes */
  protocol: 1 | 2;
  /** file holding this provisioner's client JWT: the caller of every v2 request */
  clientJwtFile?: string;
  ca: { type: "builtin" | "cfssl" | "exec"; dir?: string; workers?: number; url?: string; profile?: string; label?: string; command?: string; args: string[]; caFile?: string; timeoutMs: number };
  certDenyList?: string[];
  restartSplay: number;
  holdAfterRestartMs: number;
  holdAfterRefusalMs: number;
  upgradeRepository?: string;
  inventoryTimeoutMs: number;
  provisionTimeoutMs: number;
  maxTimeouts: number;
  backoffMaxMs: number;
  adminListen: string;
  adminToken?: string;
  auditFile?: string;
  auditSubject?: string;
  recordDir?: string;
  logLevel: string;
  logFile?: string;
  helper?: string;
  helperArgs: string[];
  helperTimeoutMs: number;
  leaderElection: boolean;
  activeActive: boolean;
  ha: { apiPrefix?: string; electionTtlMs?: number; standDownMs?: number; claimTtlMs?: number; replicas?: number };
}

export function resolveSettings(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): Settings {
  const brokers = c.broker === undefined ? ["nats://127.0.0.1:4222"] : Array.isArray(c.broker) ? c.broker : c.broker.split(",").map((s) => s.trim()).filter(Boolean);
  const interval = parseDuration(c.discovery?.interval, 60_000);
  const policiesDir = resolve(c.policies ?? "policies");
  return {
    site: c.site ?? "default",
    identity: c.identity ?? `provisioner.${hostname()}`,
    brokers,
    brokerUser: c.broker_user,
    brokerPassword: env[c.broker_password_env ?? "CHORIA_PROVISIONER_BROKER_PASSWORD"] || undefined,
    brokerToken: c.broker_token_env ? env[c.broker_token_env] || undefined : undefined,
    brokerCreds: c.broker_creds,
    tls: c.tls,
    token: env[c.token_env ?? "CHORIA_PROVISIONER_TOKEN"] ?? "",
    policiesDir,
    rulesDir: c.rules ? resolve(c.rules) : undefined,
    policy: c.policy,
    testOnReload: c.test_on_reload ?? false,
    testsDir: c.policy_tests ? resolve(c.policy_tests) : undefined,
    watch: c.watch ?? true,
    workers: c.workers ?? DEFAULT_WORKERS,
    queueMaxSize: c.queue?.max_size ?? 200_000,
    queueMaxWaitMs: parseDuration(c.queue?.max_wait, Math.max(2 * interval, 60_000)),
    discoveryIntervalMs: interval,
    discoveryTimeoutMs: parseDuration(c.discovery?.timeout, 2000),
    discoveryQuietMs: parseDuration(c.discovery?.quiet, 300),
    discoverAtStart: c.discovery?.at_start ?? true,
    lifecycleComponent: c.intake?.lifecycle_component ?? "provision_mode_server",
    aliveEvents: c.intake?.alive ?? true,
    registration: c.intake?.registration ?? true,
    legacyRegistration: c.intake?.legacy_registration ?? true,
    // ed25519 implies jwt and replaces pki, as in the Go provisioner (credentialProblems refuses an explicit pki: true)
    pki: c.features?.pki ?? !c.features?.ed25519,
    jwt: (c.features?.jwt ?? false) || (c.features?.ed25519 ?? false),
    ed25519: c.features?.ed25519 ?? false,
    jwtVerifyCert: c.jwt_verify_cert,
    jwtSigningKeyFile: c.jwt_signing_key,
    jwtSigningTokenFile: c.jwt_signing_token,
    serverJwtValidityMs: parseDuration(c.server_jwt_validity, 365 * 86_400_000),
    protocol: c.protocol ?? 1,
    clientJwtFile: c.client_jwt,
    ca: {
      type: c.ca?.type ?? "builtin",
      dir: c.ca?.dir ? resolve(c.ca.dir) : undefined,
      workers: c.ca?.workers,
      url: c.ca?.url,
      profile: c.ca?.profile,
      label: c.ca?.label,
      command: c.ca?.command,
      args: c.ca?.args ?? [],
      caFile: c.ca?.ca_file,
      timeoutMs: parseDuration(c.ca?.timeout, 10_000),
    },
    certDenyList: c.cert_deny_list,
    restartSplay: c.restart_splay ?? 1,
    holdAfterRestartMs: parseDuration(c.hold_after_restart, 10_000),
    holdAfterRefusalMs: parseDuration(c.hold_after_refusal, 300_000),
    upgradeRepository: c.upgrade_repository,
    inventoryTimeoutMs: parseDuration(c.rpc?.inventory_timeout, 4000),
    provisionTimeoutMs: parseDuration(c.rpc?.provision_timeout, 22_000),
    maxTimeouts: c.rpc?.max_timeouts ?? 2,
    backoffMaxMs: parseDuration(c.rpc?.backoff_max, 5000),
    adminListen: c.admin?.listen ?? "127.0.0.1:0",
    adminToken: env[c.admin?.token_env ?? "CHORIA_PROVISIONER_ADMIN_TOKEN"] || undefined,
    auditFile: c.audit?.file,
    auditSubject: c.audit?.subject,
    recordDir: c.record,
    logLevel: c.log?.level ?? "info",
    logFile: c.log?.file,
    helper: c.helper,
    helperArgs: c.helper_args ?? [],
    helperTimeoutMs: parseDuration(c.helper_timeout, 10_000),
    leaderElection: c.leader_election ?? false,
    activeActive: c.active_active ?? false,
    ha: {
      apiPrefix: c.ha?.api_prefix,
      electionTtlMs: c.ha?.election_ttl === undefined ? undefined : parseDuration(c.ha.election_ttl, 60_000),
      standDownMs: c.ha?.stand_down === undefined ? undefined : parseDuration(c.ha.stand_down, 1000),
      claimTtlMs: c.ha?.claim_ttl === undefined ? undefined : parseDuration(c.ha.claim_ttl, 60_000),
      replicas: c.ha?.replicas,
    },
  };
}

/**
 * Combinations the schema cannot express clearly: returned as sentences so `run` and the daemon
 * refuse to start with all of them at once rather than fail on the first node.
 */
export function credentialProblems(s: Pick<Settings, "pki" | "jwt" | "ed25519" | "jwtVerifyCert" | "jwtSigningKeyFile" | "protocol" | "clientJwtFile">): string[] {
  const out: string[] = [];
  if (s.ed25519 && s.pki) out.push("features.ed25519 excludes features.pki (nodes get an ed25519 identity and a server JWT instead of a certificate): remove pki: true");
  if (s.jwt && !s.jwtVerifyCert) out.push(`${s.ed25519 ? "features.ed25519 (which implies features.jwt)" : "features.jwt"} needs jwt_verify_cert: the file or hex key that verifies provisioning JWTs`);
  if (s.ed25519 && !s.jwtSigningKeyFile) out.push("features.ed25519 needs jwt_signing_key: the file with the key that signs server JWTs");
  if (s.protocol === 2 && !s.clientJwtFile) out.push("protocol 2 needs client_jwt: the file with this provisioner's client JWT, sent as the caller of every request");
  return out;
}
