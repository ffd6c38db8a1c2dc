/**
 * Loads the daemon configuration: YAML -> schema validation with file:line:col for every
 * problem -> CLI overrides -> validated again with the schema's defaults filled in -> resolved
 * settings with secrets from the environment. Secrets are resolved here and never logged.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from "yaml";
import { parseDuration } from "./duration.js";
import { applySchemaDefaults, schemaProblems, type SchemaProblem } from "./schema.js";
import type { ConfigFile, DefaultedConfig, HomeLogin } from "./types.js";

export { CONFIG_SCHEMA_PATH } from "./schema.js";

export interface ConfigProblem {
  file: string;
  /** absent when the problem has no place in a file (an unreadable file, a command-line flag) */
  line?: number;
  col?: number;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.file}${p.line === undefined ? "" : `:${p.line}:${p.col}`}: ${p.message}`).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Where `path` is written: the key itself for a key the document has, else its nearest parent. */
function locate(doc: Document, path: string[], atKey: boolean, lc: LineCounter): { line: number; col: number } {
  for (let n = path.length; n > 0; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
    if (!isMap(parent)) continue;
    const pair = parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === path[n - 1]);
    const node = n === path.length && !atKey ? pair?.value : undefined;
    // a value is placed at the value (a bad duration), an unknown key at the key
    const at = isNode(node) && node.range ? node.range[0] : isNode(pair?.key) && pair.key.range ? pair.key.range[0] : undefined;
    if (at !== undefined) return lc.linePos(at);
  }
  return { line: 1, col: 1 };
}

export function parseConfigText(text: string, file: string): ConfigFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ file, ...lc.linePos(e.pos[0]), message: e.message.split("\n")[0]! })));
  }
  const data = (doc.toJS() ?? {}) as ConfigFile;
  const problems = schemaProblems(data);
  if (!problems.length) problems.push(...renewalProblems(data));
  if (problems.length) {
    const placed = problems.map((p) => ({ file, ...locate(doc, p.path, p.atKey ?? false, lc), message: p.message }));
    throw new ConfigError(placed.sort((a, b) => a.line - b.line || a.col - b.col));
  }
  return data;
}

export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError([{ file, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
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
    cfg.ca.ledger = rel(cfg.ca.ledger);
    cfg.ca.crl_file = rel(cfg.ca.crl_file);
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
  const relLogin = (l: HomeLogin): void => {
    l.broker_creds = rel(l.broker_creds);
    if (l.tls) l.tls = { ...l.tls, ca: rel(l.tls.ca), cert: rel(l.tls.cert), key: rel(l.tls.key) };
  };
  if (cfg.arrival) {
    relLogin(cfg.arrival);
    for (const h of cfg.arrival.homes ?? []) relLogin(h);
  }
  if (cfg.rollout) cfg.rollout.state_file = rel(cfg.rollout.state_file);
  if (cfg.renewal) {
    cfg.renewal.cert = rel(cfg.renewal.cert);
    cfg.renewal.key = rel(cfg.renewal.key);
  }
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
  ca: { type: "builtin" | "cfssl" | "exec"; dir?: string; workers?: number; url?: string; profile?: string; label?: string; command?: string; args: string[]; caFile?: string; timeoutMs: number; ledger?: string; crlFile?: string; crlValidityMs: number; revokeOnShutdown: boolean };
  certDenyList?: string[];
  /** intake.identity_pattern, anchored: identities must also match it */
  identityPattern?: RegExp;
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
  /** a token-guarded admin endpoint may listen on a non-loopback address */
  adminAllowRemote: boolean;
  auditFile?: string;
  auditSubject?: string;
  recordDir?: string;
  /** what the recorder writes at most (JsonLimits of types/) */
  recordLimits: { maxDepth: number; maxBytes: number };
  logLevel: string;
  logFile?: string;
  helper?: string;
  helperArgs: string[];
  helperTimeoutMs: number;
  /** helper programs running at once; workers beyond it wait */
  helperConcurrency: number;
  leaderElection: boolean;
  activeActive: boolean;
  ha: { apiPrefix?: string; electionTtlMs?: number; standDownMs?: number; claimTtlMs?: number; replicas?: number };
  /** arrival tracking; undefined when off */
  arrival?: ArrivalSettings;
  rollout: RolloutSettings;
  /** certificate renewal; undefined when off */
  renewal?: RenewalSettings;
}

/** a home broker's login, secrets resolved */
export interface HomeLoginSettings {
  tls?: ConfigFile["tls"];
  user?: string;
  password?: string;
  token?: string;
  creds?: string;
}

export interface ArrivalSettings {
  deadlineMs: number;
  homes: Array<{ name: string; brokers: string[]; brokerSets?: string[]; login: HomeLoginSettings }>;
  /** for a broker set no home covers, watched on its own brokers */
  login: HomeLoginSettings;
  health: { window: number; minLost: number };
}

export interface RenewalSettings {
  windowMs: number;
  /** token bucket: requests per ms on average, and at most `burst` at once */
  ratePerMs: number;
  burst: number;
  retryAfterMs: number;
  timeoutMs: number;
  intervalMs: number;
  collective: string;
  /** signs the requests instead of each home's tls cert and key */
  caller?: { cert: string; key: string };
  /** the provisioning token reprovision checks; a secret, never logged */
  token: string;
}

export interface RolloutSettings {
  /** on only with arrival */
  enabled: boolean;
  canary: number;
  minArrivals: number;
  /** fraction */
  maxLost: number;
  onFailure: "revert" | "pause";
  trustInitial: boolean;
  stateFile?: string;
  /** the rollout section was written (rollout without arrival is a mistake worth saying) */
  configured: boolean;
}

function brokerList(b: string | string[]): string[] {
  return Array.isArray(b) ? b : b.split(",").map((s) => s.trim()).filter(Boolean);
}

function homeLogin(l: HomeLogin, env: NodeJS.ProcessEnv, base: HomeLoginSettings = {}): HomeLoginSettings {
  return {
    tls: l.tls ?? base.tls,
    user: l.broker_user ?? base.user,
    password: l.broker_password_env ? env[l.broker_password_env] || undefined : base.password,
    token: l.broker_token_env ? env[l.broker_token_env] || undefined : base.token,
    creds: l.broker_creds ?? base.creds,
  };
}

/** "10%" or 0.1 */
export function lostShare(v: number | string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  return typeof v === "number" ? v : Number(v.slice(0, -1)) / 100;
}

function arrivalSettings(c: ConfigFile, env: NodeJS.ProcessEnv): ArrivalSettings | undefined {
  const a = c.arrival;
  if (!a) return undefined;
  const login = homeLogin(a, env);
  return {
    deadlineMs: parseDuration(a.deadline, 120_000),
    homes: (a.homes ?? []).map((h) => {
      const brokers = brokerList(h.broker);
      return { name: h.name ?? brokers.join(","), brokers, brokerSets: h.broker_sets, login: homeLogin(h, env, login) };
    }),
    login,
    health: { window: a.broker_set_health?.window ?? 20, minLost: a.broker_set_health?.min_lost ?? 3 },
  };
}

const PER_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "10/m" or a number per minute -> requests per millisecond */
export function parseRate(v: string | number): number {
  if (typeof v === "number") return v / PER_MS.m;
  const m = /^(\d+(?:\.\d+)?)\/(s|m|h|d)$/.exec(v.trim());
  if (!m) throw new Error(`invalid rate ${JSON.stringify(v)} (use e.g. 10/m, 100/h, 2/s)`);
  return Number(m[1]) / PER_MS[m[2] as keyof typeof PER_MS];
}

function renewalSettings(c: ConfigFile, env: NodeJS.ProcessEnv, tokenEnv: string): RenewalSettings | undefined {
  const r = c.renewal;
  if (!r || r.enabled === false) return undefined;
  return {
    windowMs: parseDuration(r.window),
    ratePerMs: parseRate(r.rate!),
    burst: r.burst!,
    retryAfterMs: parseDuration(r.retry_after),
    timeoutMs: parseDuration(r.timeout),
    intervalMs: parseDuration(r.interval),
    collective: r.collective!,
    caller: r.cert && r.key ? { cert: r.cert, key: r.key } : undefined,
    token: env[r.token_env ?? tokenEnv] ?? "",
  };
}

/**
 * What renewal needs besides its own section, as problems at the key that turned it on: a
 * configuration file reports them at their file:line:col, like the schema's own.
 */
export function renewalProblems(c: ConfigFile): SchemaProblem[] {
  const r = c.renewal;
  if (!r || r.enabled === false) return [];
  const at = r.enabled === undefined ? ["renewal"] : ["renewal", "enabled"];
  const out: SchemaProblem[] = [];
  const say = (message: string, path = at): void => void out.push({ path, atKey: path === at && r.enabled === undefined, message });
  if (!c.arrival?.homes?.length) say("renewal needs arrival.homes: the home brokers where nodes are asked to go back to provisioning");
  else {
    const login = (h: NonNullable<NonNullable<ConfigFile["arrival"]>["homes"]>[number]) => h.tls ?? c.arrival!.tls;
    const unsigned = c.arrival.homes.filter((h) => !login(h)?.cert || !login(h)?.key).map((h) => h.name ?? String(h.broker));
    if (!(r.cert && r.key) && unsigned.length) say(`renewal signs its requests with a client certificate: set renewal.cert and renewal.key, or the home's tls cert and key (arrival.tls or arrival.homes[].tls) for ${unsigned.join(", ")}`);
  }
  if (Boolean(r.cert) !== Boolean(r.key)) say(`renewal.${r.cert ? "cert" : "key"} needs renewal.${r.cert ? "key" : "cert"}`, ["renewal", r.cert ? "cert" : "key"]);
  if (c.features?.pki === false || (c.features?.ed25519 && c.features.pki === undefined)) say("renewal renews certificates: it needs features.pki");
  if ((c.ca?.type === "cfssl" || c.ca?.type === "exec") && !c.ca.ledger) say(`renewal reads the certificate ledger: a ${c.ca.type} CA keeps one only when ca.ledger is set`);
  if (typeof r.rate === "string" && /^[0.]+\//.test(r.rate)) say("renewal.rate must be more than 0", ["renewal", "rate"]);
  return out;
}

/** `written`: the document as written, before the schema's defaults (rollout: {} is always there after) */
function rolloutSettings(c: ConfigFile, written: ConfigFile): RolloutSettings {
  const r = c.rollout ?? {};
  const canary = r.canary ?? 20;
  const maxLost = lostShare(r.max_lost, 0.1);
  return {
    enabled: c.arrival !== undefined && (r.enabled ?? true),
    canary,
    minArrivals: r.min_arrivals ?? Math.max(1, Math.ceil(canary * (1 - maxLost))),
    maxLost,
    onFailure: r.on_failure ?? "revert",
    trustInitial: r.trust_initial ?? false,
    stateFile: r.state_file,
    configured: written.rollout !== undefined && written.rollout.enabled !== false,
  };
}

/** Rollout settings the schema cannot check: sentences, as credentialProblems gives them. */
export function rolloutProblems(s: Pick<Settings, "arrival" | "rollout">): string[] {
  const out: string[] = [];
  if (s.rollout.configured && !s.arrival) out.push("rollout needs arrival: a canary is judged by its nodes' arrival at home; add an arrival section");
  if (s.rollout.minArrivals > s.rollout.canary) out.push(`rollout.min_arrivals (${s.rollout.minArrivals}) is more than rollout.canary (${s.rollout.canary}): no canary could ever be trusted`);
  if (s.rollout.maxLost > 1) out.push(`rollout.max_lost (${s.rollout.maxLost * 100}%) is more than 100%`);
  return out;
}


/**
 * The document with the schema's defaults filled in (a copy), validated again: flags merged
 * after the file was read, and documents built in code, get the same checks as a file.
 * `source` names where the document came from in the error.
 */
export function withDefaults(c: ConfigFile, source = "configuration"): DefaultedConfig {
  const d = structuredClone(c);
  const problems = [...applySchemaDefaults(d), ...renewalProblems(d)];
  if (problems.length) throw new ConfigError(problems.map((p) => ({ file: source, message: p.message })));
  return d as DefaultedConfig;
}

export function resolveSettings(c: ConfigFile, env: NodeJS.ProcessEnv = process.env, source?: string): Settings {
  const d = withDefaults(c, source);
  const brokers = Array.isArray(d.broker) ? d.broker : d.broker.split(",").map((s) => s.trim()).filter(Boolean);
  const interval = parseDuration(d.discovery.interval);
  return {
    site: d.site,
    identity: d.identity ?? `provisioner.${hostname()}`,
    brokers,
    brokerUser: d.broker_user,
    brokerPassword: env[d.broker_password_env] || undefined,
    brokerToken: d.broker_token_env ? env[d.broker_token_env] || undefined : undefined,
    brokerCreds: d.broker_creds,
    tls: d.tls,
    token: env[d.token_env] ?? "",
    policiesDir: resolve(d.policies),
    rulesDir: d.rules ? resolve(d.rules) : undefined,
    policy: d.policy,
    testOnReload: d.test_on_reload,
    testsDir: d.policy_tests ? resolve(d.policy_tests) : undefined,
    watch: d.watch,
    workers: d.workers,
    queueMaxSize: d.queue.max_size,
    queueMaxWaitMs: d.queue.max_wait === undefined ? Math.max(2 * interval, 60_000) : parseDuration(d.queue.max_wait),
    discoveryIntervalMs: interval,
    discoveryTimeoutMs: parseDuration(d.discovery.timeout),
    discoveryQuietMs: parseDuration(d.discovery.quiet),
    discoverAtStart: d.discovery.at_start,
    lifecycleComponent: d.intake.lifecycle_component,
    aliveEvents: d.intake.alive,
    registration: d.intake.registration,
    legacyRegistration: d.intake.legacy_registration,
    identityPattern: d.intake.identity_pattern === undefined ? undefined : identityPattern(d.intake.identity_pattern),
    // ed25519 implies jwt and replaces pki, as in the Go provisioner (credentialProblems refuses an explicit pki: true)
    pki: d.features.pki ?? !d.features.ed25519,
    jwt: d.features.jwt || d.features.ed25519,
    ed25519: d.features.ed25519,
    jwtVerifyCert: d.jwt_verify_cert,
    jwtSigningKeyFile: d.jwt_signing_key,
    jwtSigningTokenFile: d.jwt_signing_token,
    serverJwtValidityMs: parseDuration(d.server_jwt_validity),
    protocol: d.protocol,
    clientJwtFile: d.client_jwt,
    ca: {
      type: d.ca.type,
      dir: d.ca.dir ? resolve(d.ca.dir) : undefined,
      workers: d.ca.workers,
      url: d.ca.url,
      profile: d.ca.profile,
      label: d.ca.label,
      command: d.ca.command,
      args: d.ca.args ?? [],
      caFile: d.ca.ca_file,
      timeoutMs: parseDuration(d.ca.timeout),
      // the built-in CA keeps its ledger and CRL in its directory unless told otherwise; cfssl/exec keep a ledger only when named
      ledger: d.ca.ledger ? resolve(d.ca.ledger) : d.ca.dir && d.ca.type === "builtin" ? join(resolve(d.ca.dir), "ledger.sqlite") : undefined,
      crlFile: d.ca.crl_file ? resolve(d.ca.crl_file) : d.ca.dir && d.ca.type === "builtin" ? join(resolve(d.ca.dir), "crl.pem") : undefined,
      crlValidityMs: parseDuration(d.ca.crl_validity),
      revokeOnShutdown: d.ca.revoke_on_shutdown,
    },
    certDenyList: d.cert_deny_list,
    restartSplay: d.restart_splay,
    holdAfterRestartMs: parseDuration(d.hold_after_restart),
    holdAfterRefusalMs: parseDuration(d.hold_after_refusal),
    upgradeRepository: d.upgrade_repository,
    inventoryTimeoutMs: parseDuration(d.rpc.inventory_timeout),
    provisionTimeoutMs: parseDuration(d.rpc.provision_timeout),
    maxTimeouts: d.rpc.max_timeouts,
    backoffMaxMs: parseDuration(d.rpc.backoff_max),
    adminListen: d.admin.listen,
    adminToken: env[d.admin.token_env] || undefined,
    adminAllowRemote: d.admin.allow_remote,
    auditFile: d.audit?.file,
    auditSubject: d.audit?.subject,
    recordDir: d.record,
    recordLimits: { maxDepth: d.record_limits.max_depth, maxBytes: d.record_limits.max_bytes },
    logLevel: d.log.level,
    logFile: d.log.file,
    helper: d.helper,
    helperArgs: d.helper_args ?? [],
    helperTimeoutMs: parseDuration(d.helper_timeout),
    // one helper per core (no schema default: it depends on the host): each is a forked process, often an interpreter
    helperConcurrency: d.helper_concurrency ?? availableParallelism(),
    leaderElection: d.leader_election,
    activeActive: d.active_active,
    // no defaults here: a bucket that exists keeps its own settings, and ha/ knows the reference's
    ha: {
      apiPrefix: d.ha?.api_prefix,
      electionTtlMs: d.ha?.election_ttl === undefined ? undefined : parseDuration(d.ha.election_ttl),
      standDownMs: d.ha?.stand_down === undefined ? undefined : parseDuration(d.ha.stand_down),
      claimTtlMs: d.ha?.claim_ttl === undefined ? undefined : parseDuration(d.ha.claim_ttl),
      replicas: d.ha?.replicas,
    },
    arrival: arrivalSettings(d, env),
    rollout: rolloutSettings(d, c),
    renewal: renewalSettings(d, env, d.token_env),
  };
}

function identityPattern(p: string): RegExp {
  try {
    return new RegExp(`^(?:${p})$`);
  } catch (e) {
    throw new Error(`intake.identity_pattern ${JSON.stringify(p)} is not a valid regular expression: ${(e as Error).message}`);
  }
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
