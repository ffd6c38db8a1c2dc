/**
 * choria_provision as a provisioning-mode go-choria server runs it (§4.1, §4.2): lock
 * middleware, mode checks, Go-style parsing, exact token comparison, Go's status texts and
 * output field order. The node never leaves provisioning mode while it answers this agent,
 * so the "not in provisioning mode" branches cannot be reached and are not modelled.
 */
import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { LOCK_HELD_MESSAGE, WRONG_TOKEN_MESSAGE } from "../../protocol/index.js";
import { checkDeliveredCertificate } from "../cert-check.js";
import { createCsrPemAsync } from "../csr.js";
import { hasFault } from "../faults.js";
import { decodeGoStruct, GoJsonError, goSyntaxError, type GoStruct } from "../gojson.js";
import { decryptDeliveredKey, newEcdhPair } from "../keytransport.js";
import { Mode, type SimNode } from "../node.js";
import { rngFor } from "../prng.js";
import { CONFIG_DIR, CONFIG_FILE, NO_REPLY, SSL_DIR, aborted, invalidData, ok, type ActionResult, type EnvelopeInfo, type SimRuntime } from "../runtime.js";

export const LOCK_WINDOW_MS = 2 * 60 * 1000;
export const LOCKED_ERROR = LOCK_HELD_MESSAGE;
export const TOKEN_ERROR = WRONG_TOKEN_MESSAGE;

const S = (name: string, fields: GoStruct["fields"]): GoStruct => ({ name, qualified: `provision.${name}`, fields });
const STRUCTS: Record<string, GoStruct> = {
  configure: S("ConfigureRequest", {
    token: "string",
    config: "string",
    certificate: "string",
    ca: "string",
    ssldir: "string",
    key: "string",
    ecdh_public: "string",
    action_policies: "map[string]string",
    opa_policies: "map[string]string",
    server_jwt: "string",
  }),
  gen25519: S("ED25519Request", { token: "string", nonce: "string" }),
  gencsr: S("CSRRequest", { token: "string", cn: "string", C: "string", L: "string", O: "string", OU: "string", ST: "string" }),
  jwt: S("JWTRequest", { token: "string" }),
  release_update: S("ReleaseUpdateRequest", { token: "string", repository: "string", version: "string" }),
  reprovision: S("ReprovisionRequest", { token: "string" }),
  restart: S("RestartRequest", { token: "string", splay: "int" }),
  shutdown: S("ShutdownRequest", { token: "string" }),
};

export const PROVISION_ACTIONS: readonly string[] = Object.keys(STRUCTS);
const LOCKED = new Set(["configure", "gen25519", "gencsr", "jwt", "release_update"]);

export function isLockedAction(action: string): boolean {
  return LOCKED.has(action);
}

/**
 * The lockedAction middleware: runs before the agent mutex and before any other check, so
 * a second provisioner gets its "Could not obtain provisioning lock" even while the node is
 * busy restarting. Returns the abort result, or undefined when the caller holds the lock.
 */
export function checkLock(rt: SimRuntime, node: SimNode, env: EnvelopeInfo, now = Date.now()): ActionResult | undefined {
  const key = `${env.senderid}.${env.callerid}`;
  if (node.lockBy === undefined || now > node.lockUntil || node.lockBy === key) {
    node.lockBy = key;
    node.lockUntil = now + LOCK_WINDOW_MS;
    return undefined;
  }
  rt.stats.violation(node, "lock_held", `${key} asked while ${node.lockBy} holds the provisioning lock`);
  return aborted(LOCKED_ERROR);
}

type Args = Record<string, string | number | Record<string, string>>;

function parse(rt: SimRuntime, node: SimNode, agentInBody: string, action: string, data: unknown): Args | ActionResult {
  try {
    return decodeGoStruct(STRUCTS[action], data);
  } catch (e) {
    if (!(e instanceof GoJsonError)) throw e;
    rt.stats.violation(node, "invalid_data", `${action}: ${e.message}`);
    return invalidData(`Could not parse request data for ${agentInBody}#${action}: ${e.message}`);
  }
}

function tokenOk(rt: SimRuntime, node: SimNode, action: string, token: string): ActionResult | undefined {
  if (rt.token === undefined || rt.token === "" || token === rt.token) return undefined;
  rt.stats.violation(node, "wrong_token", `${action} with an incorrect token`);
  return aborted(TOKEN_ERROR);
}

/** Go's config bool parsing: anything else makes the file unparseable */
function configBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (["1", "y", "yes", "t", "true", "on"].includes(s)) return true;
  if (["0", "n", "no", "f", "false", "off"].includes(s)) return false;
  return undefined;
}

const PROVISION_KEY = "plugin.choria.server.provision";

/** whether a restart with this on-disk configuration comes back outside provisioning mode */
export function leavesProvisioning(cfg: Record<string, string> | undefined): boolean {
  return cfg !== undefined && cfg[PROVISION_KEY] !== undefined && configBool(cfg[PROVISION_KEY]) === false;
}

function goJsonConfig(text: string): Record<string, string> | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return goSyntaxError(text);
  }
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) return `json: cannot unmarshal ${Array.isArray(v) ? "array" : typeof v === "boolean" ? "bool" : typeof v} into Go value of type map[string]string`;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === "string") out[k] = x;
    else if (x !== null) return `json: cannot unmarshal ${Array.isArray(x) ? "array" : typeof x === "boolean" ? "bool" : typeof x} into Go value of type string`;
  }
  return out;
}

async function gencsr(rt: SimRuntime, node: SimNode, a: Args): Promise<ActionResult> {
  let cn = (a.cn as string) || node.identity;
  if (hasFault(node.faults, "wrong_cn_csr")) {
    const other = rt.nodes[(node.index + 1) % rt.nodes.length];
    cn = other && other !== node ? other.identity : `imposter.${node.identity}`;
  }
  const key = rt.keys.key(node.keyIndex);
  let csr: string;
  if (hasFault(node.faults, "bad_csr")) {
    csr = `this is not a certificate request for ${cn}\n`;
  } else {
    const t0 = performance.now();
    // ST is accepted and ignored, as Go does
    csr = await createCsrPemAsync({ cn, C: a.C as string, L: a.L as string, O: a.O as string, OU: a.OU as string }, key.spkiDer, key.privateKey);
    rt.stats.csrTimed(performance.now() - t0);
  }
  const after = hasFault(node.faults, "die_after_gencsr") ? () => rt.kill(node, "die_after_gencsr") : undefined;
  return ok({ csr, public_key: key.pkcs1PublicPem, ssldir: SSL_DIR }, after);
}

function configure(rt: SimRuntime, node: SimNode, a: Args, env: EnvelopeInfo): ActionResult {
  const config = a.config as string;
  const certificate = a.certificate as string;
  const ca = a.ca as string;
  const ssldir = a.ssldir as string;
  const key = a.key as string;
  const ecdhPublic = a.ecdh_public as string;
  if (config.length === 0) {
    rt.stats.violation(node, "config_empty", "configure without config");
    return aborted("Did not receive any configuration to write, cannot write a empty configuration file");
  }
  if (key !== "" && ecdhPublic === "") {
    rt.stats.violation(node, "key_without_ecdh", "configure delivered a key without ecdh_public");
    return aborted("EDCH Public Key not supplied while providing a private key");
  }
  const settings = goJsonConfig(config);
  if (typeof settings === "string") {
    rt.stats.violation(node, "config_invalid", settings);
    return aborted(`Could not decode configuration data: ${settings}`);
  }
  let deliveredKey = node.privateKey;
  if (certificate !== "" && ca !== "" && ssldir !== "") {
    if (key !== "") {
      try {
        deliveredKey = decryptDeliveredKey(key, ecdhPublic, node.ecdhPrivate);
      } catch (e) {
        rt.stats.violation(node, "key_decrypt_failed", (e as Error).message);
        return aborted(`TLS Setup Failed: could not decrypt private key: ${(e as Error).message}`);
      }
    }
  }
  const provision = settings[PROVISION_KEY];
  if (provision !== undefined && configBool(provision) === undefined) {
    rt.stats.violation(node, "config_invalid", `${PROVISION_KEY}=${provision} is not a boolean`);
    return aborted(`Could not write config: generated configuration could not be parsed: invalid boolean value ${JSON.stringify(provision)} for ${PROVISION_KEY}`);
  }

  // from here on Go writes everything and replies OK; the rest is the strict checker's opinion
  if (provision !== "false") rt.stats.violation(node, "config_provision_not_false", `${PROVISION_KEY} is ${JSON.stringify(provision)}, expected "false"`);
  if (settings.identity !== node.identity) rt.stats.violation(node, "config_identity_mismatch", `identity is ${JSON.stringify(settings.identity)}, expected ${node.identity}`);
  for (const [field, suffix] of [["action_policies", ".policy"], ["opa_policies", ".rego"]] as const) {
    for (const name of Object.keys(a[field] as Record<string, string>)) {
      if (!name.endsWith(suffix)) rt.stats.violation(node, "bad_policy_name", `${field} file ${name} does not end in ${suffix}`);
    }
  }
  if (certificate !== "" || ca !== "" || ssldir !== "") {
    if (certificate === "" || ca === "" || ssldir === "") {
      rt.stats.violation(node, "tls_incomplete", "certificate, ca and ssldir must all be set or Go writes none of them");
    } else {
      if (deliveredKey) node.privateKey = deliveredKey;
      const publicKey = deliveredKey ? createPublicKey(deliveredKey) : rt.keys.key(node.keyIndex).spkiDer;
      const { record, findings } = checkDeliveredCertificate({ identity: node.identity, certificate, ca, publicKey });
      for (const f of findings) rt.stats.violation(node, f.kind, f.detail);
      node.certificate = record;
    }
  } else if ((a.server_jwt as string) === "") {
    rt.stats.violation(node, "no_credentials", "configure delivered neither a certificate nor a server JWT");
  }
  const serverJwt = a.server_jwt as string;
  if (serverJwt !== "") {
    // Go only writes the file; a token that does not describe this node is a broken node later
    for (const f of checkServerJwt(serverJwt, node)) rt.stats.violation(node, "server_jwt_invalid", f);
    node.serverJwt = serverJwt;
  }
  node.configuration = { ...settings };
  node.configuredThisBoot = true;
  node.configureCount++;
  rt.stats.configured(node);
  rt.lifecycle(node, "provisioned", "provision_mode_server");
  void env;
  return ok({ message: `Wrote ${1 + Object.keys(settings).length} lines to ${CONFIG_FILE}` });
}

/** What a broker and the node's own security provider would object to in a delivered server JWT. */
export function checkServerJwt(token: string, node: SimNode, nowMs = Date.now()): string[] {
  const parts = token.split(".");
  if (parts.length !== 3) return ["server_jwt is not a JWT (three dot-separated parts)"];
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return ["server_jwt claims are not JSON"];
  }
  const out: string[] = [];
  if (claims.purpose !== "choria_server") out.push(`purpose is ${JSON.stringify(claims.purpose)}, expected "choria_server"`);
  if (claims.identity !== node.identity) out.push(`identity is ${JSON.stringify(claims.identity)}, expected ${node.identity}`);
  if (node.ed25519Public === undefined) out.push("server_jwt delivered but gen25519 never ran: the node has no ed25519 key for it");
  else if (String(claims.public_key).toLowerCase() !== node.ed25519Public) out.push("public_key is not the key this node made in gen25519");
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= nowMs) out.push(`exp ${JSON.stringify(claims.exp)} is not in the future`);
  if (!Array.isArray(claims.collectives) || claims.collectives.length === 0) out.push("collectives is missing or empty");
  return out;
}

function restart(rt: SimRuntime, node: SimNode, a: Args): ActionResult {
  const cfg = node.configuredThisBoot ? node.configuration : undefined;
  if (cfg && cfg[PROVISION_KEY] !== undefined && configBool(cfg[PROVISION_KEY]) === true) {
    rt.stats.violation(node, "restart_refused", "restart while the written configuration enables provisioning");
    return aborted(`Configuration ${CONFIG_FILE} enables provisioning, restart cannot continue`);
  }
  let splay = a.splay as number;
  if (splay < 0) {
    // rand.Intn panics on a negative bound: the Go server crashes without replying
    rt.stats.violation(node, "negative_splay", `restart with splay ${splay} crashes the server`);
    rt.kill(node, "negative_splay");
    return NO_REPLY;
  }
  if (splay === 0) splay = 10;
  const secs = Math.floor(rngFor(rt.seed, `splay:${node.restartCount}`, node.identity)() * splay) + 2;
  if (!cfg) rt.stats.violation(node, "restart_without_configure", "restart before any configure: the node comes back in provisioning mode");
  return ok({ message: `Restarting Choria Server after ${secs}s` }, () => rt.restart(node, rt.restartDelayMs ?? secs * 1000));
}

function shutdown(rt: SimRuntime, node: SimNode): ActionResult {
  const secs = Math.floor(rngFor(rt.seed, "shutdown", node.identity)() * 10);
  return ok({ message: `Shutting Choria Server down after ${secs}s` }, () => rt.shutdown(node, rt.restartDelayMs ?? secs * 1000));
}

function jwt(rt: SimRuntime, node: SimNode): ActionResult {
  if (rt.provisioningJwt === undefined) return aborted("Provisioning JWT file does not exist");
  const pair = newEcdhPair();
  node.ecdhPrivate = pair.privateKey;
  return ok({ jwt: rt.provisioningJwt, ecdh_public: pair.publicHex });
}

function gen25519(node: SimNode, a: Args): ActionResult {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(String(publicKey.export({ format: "jwk" }).x), "base64url");
  const signature = sign(null, Buffer.from(a.nonce as string, "utf8"), privateKey);
  // written to server.seed: survives restarts; any earlier server.jwt is deleted
  node.ed25519Public = raw.toString("hex");
  node.serverJwt = undefined;
  return ok({ public_key: raw.toString("hex"), directory: CONFIG_DIR, signature: signature.toString("hex") });
}

function releaseUpdate(rt: SimRuntime, node: SimNode, a: Args): ActionResult {
  const version = a.version as string;
  const repo = a.repository as string;
  if (!/^https?:\/\/\S+/.test(repo)) {
    rt.stats.violation(node, "release_update_failed", `repository ${JSON.stringify(repo)} is not an http(s) URL`);
    return aborted(`Update to version ${version} failed, release rolled back: unsupported protocol scheme in ${JSON.stringify(repo)}`);
  }
  if (version === "") {
    rt.stats.violation(node, "release_update_failed", "no version given");
    return aborted(`Update to version ${version} failed, release rolled back: no version specified`);
  }
  const from = node.version;
  rt.lifecycle(node, "upgraded", "provision_mode_server", { version: from, new_version: version });
  rt.stats.upgraded();
  return ok({ message: "Restarting Choria Server after 2s" }, () => {
    node.version = version;
    rt.restart(node, rt.restartDelayMs ?? 2000, { forceProvisioning: true });
  });
}

/**
 * reprovision on a provisioned server at its home (go-choria's reprovision_action.go): parse,
 * token, then "Restarting after <2-11>s" and, after the splay, back to provisioning mode. The
 * provisioning-mode and no-configuration-file checks cannot fail at home.
 */
export function reprovisionAtHome(rt: SimRuntime, node: SimNode, data: unknown, agentInBody: string, goBack: (node: SimNode, delayMs: number) => void): ActionResult {
  const a = parse(rt, node, agentInBody, "reprovision", data);
  if ("statuscode" in a) return a as ActionResult;
  const bad = tokenOk(rt, node, "reprovision", a.token as string);
  if (bad) return bad;
  const splay = 2 + Math.floor(rngFor(rt.seed, `reprovision:${node.restartCount}`, node.identity)() * 10);
  return ok({ message: `Restarting after ${splay}s` }, () => goBack(node, rt.restartDelayMs ?? splay * 1000));
}

/**
 * The action body, called with the agent mutex held. `agentInBody` is the agent named in the
 * RPC body, which Go uses in its InvalidData text.
 */
export function runProvisionAction(rt: SimRuntime, node: SimNode, action: string, data: unknown, env: EnvelopeInfo, agentInBody: string): ActionResult | Promise<ActionResult> {
  // a restart or shutdown in progress holds the mutex until the process is replaced
  if (node.mode !== Mode.Provisioning) return NO_REPLY;
  if (action === "reprovision") {
    rt.stats.violation(node, "reprovision_in_provisioning", "reprovision sent to a node already in provisioning mode");
    return aborted("Server is already in provisioning mode, cannot enable provisioning mode again");
  }
  if (action === "release_update" && !node.upgradable) {
    rt.stats.violation(node, "release_update_not_allowed", "release_update on a node without upgrades enabled");
    return aborted("Version updates is not enabled in the configuration");
  }
  const a = parse(rt, node, agentInBody, action, data);
  if ("statuscode" in a) return a as ActionResult;
  const bad = tokenOk(rt, node, action, a.token as string);
  if (bad) return bad;
  switch (action) {
    case "gencsr":
      return gencsr(rt, node, a);
    case "configure":
      return configure(rt, node, a, env);
    case "restart":
      return restart(rt, node, a);
    case "shutdown":
      return shutdown(rt, node);
    case "jwt":
      return jwt(rt, node);
    case "gen25519":
      return gen25519(node, a);
    case "release_update":
      return releaseUpdate(rt, node, a);
    default:
      throw new Error(`unhandled choria_provision action ${action}`);
  }
}
