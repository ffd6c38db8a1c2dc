/**
 * The ed25519 / Organization Issuer half of provisioning (§7.3):
 *   - the nonce for choria_provision#gen25519 and the check of the node's signature over it
 *   - the server JWT (purpose choria_server) we sign for the node, optionally chained to an
 *     Organization Issuer through a chain-issuer client token (jwt_signing_token)
 * Semantics follow the Go provisioner's generateServerJWT and the tokens package.
 */
import { createPrivateKey, randomUUID, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { CredentialConfigError, ServerJwtError } from "./errors.js";
import { decodeJws, signJws, type JwsAlg } from "./jws.js";
import { ed25519PrivateFromSeed, ed25519PublicFromRaw, rawEd25519Public } from "./keys.js";
import { newKsuid } from "./ksuid.js";
import { CHAIN_ISSUER_PREFIX, DEFAULT_ORGANIZATION } from "./provisioning-jwt.js";

export const SERVER_PURPOSE = "choria_server";
export const CLIENT_ID_PURPOSE = "choria_client_id";
export const SERVER_JWT_ISSUER = "Choria Provisioner";
/** server_jwt_validity default ("1y" in the Go provisioner config) */
export const DEFAULT_SERVER_JWT_VALIDITY_MS = 365 * 24 * 3600 * 1000;
/** a requested validity at or below this falls back to server_jwt_validity */
export const MIN_SERVER_JWT_VALIDITY_MS = 3600 * 1000;

/**
 * The gen25519 nonce: Go's provisioner uses a v1 request id (32 hex chars, a dashless UUIDv4);
 * a v2 client uses a KSUID. The node signs the nonce's UTF-8 bytes as they are.
 */
export function newNonce(protocolVersion: 1 | 2 = 1): string {
  return protocolVersion === 2 ? newKsuid() : randomUUID().replace(/-/g, "");
}

export interface Gen25519Reply {
  public_key: string;
  signature: string;
  directory?: string;
}

/**
 * True when the reply's signature is a valid ed25519 signature of nonce by public_key. Malformed
 * hex or wrong lengths are simply false (Go's ed25519.Verify would panic on a short key).
 */
export function verifyGen25519(reply: Gen25519Reply, nonce: string): boolean {
  if (!reply || typeof reply.public_key !== "string" || typeof reply.signature !== "string" || typeof nonce !== "string") return false;
  if (!/^[0-9a-fA-F]{64}$/.test(reply.public_key) || !/^[0-9a-fA-F]{128}$/.test(reply.signature)) return false;
  try {
    return cryptoVerify(null, Buffer.from(nonce, "utf8"), ed25519PublicFromRaw(Buffer.from(reply.public_key, "hex")), Buffer.from(reply.signature, "hex"));
  } catch {
    return false;
  }
}

export interface ServerPermissions {
  submission?: boolean;
  streams?: boolean;
  governor?: boolean;
  service_host?: boolean;
}

/** The part of the helper's `server_claims` the Go provisioner honours. */
export interface ServerClaimsOverrides {
  ou?: string;
  /** Unix seconds */
  exp?: number;
  collectives?: string[];
  pub_subjects?: string[];
  permissions?: ServerPermissions;
}

export interface ServerJwtInput {
  identity: string;
  /** gen25519 public_key (hex): the node's ed25519 identity key */
  publicKey: string;
  /** the helper's configuration map: plugin.security.provider and collectives pick defaults */
  configuration?: Record<string, string>;
  /** the helper's server_claims, if any */
  serverClaims?: ServerClaimsOverrides | null;
}

export interface SignServerJwtOptions {
  /** server_jwt_validity in milliseconds; default one year */
  validity?: number;
  /** jwt_signing_token contents: a chain-issuer client JWT (with tcs) to chain the server JWT to */
  chainToken?: string;
  /**
   * hex seed that signs the chain data; defaults to the signing key. Go uses jwt_signing_key for
   * both, and verifiers check the token with the key named in iss, so both must be the chain
   * issuer's key (the token's public_key): anything else is refused rather than signed.
   */
  issuerSeed?: string;
  now?: Date;
}

export interface SignedServerJwt {
  token: string;
  claims: Record<string, unknown>;
  alg: JwsAlg;
  /** things Go only logs, e.g. a too-short validity replaced by the default */
  warnings: string[];
}

interface SigningKey {
  alg: JwsAlg;
  key: KeyObject;
  /** hex ed25519 public key, when the key is ed25519 */
  edPublicHex?: string;
}

/** jwt_signing_key contents: a hex ed25519 seed (64 chars), or a PEM private key (RSA or ed25519). */
export function parseSigningKey(text: string, what = "jwt_signing_key"): SigningKey {
  const t = typeof text === "string" ? text.trim() : "";
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    const key = ed25519PrivateFromSeed(Buffer.from(t, "hex"));
    return { alg: "EdDSA", key, edPublicHex: rawEd25519Public(key).toString("hex") };
  }
  if (t.startsWith("-----BEGIN ")) {
    let key: KeyObject;
    try {
      key = createPrivateKey(t);
    } catch (e) {
      throw new CredentialConfigError(`${what}: could not parse the PEM private key: ${(e as Error).message}`);
    }
    if (key.asymmetricKeyType === "rsa") return { alg: "RS256", key };
    if (key.asymmetricKeyType === "ed25519") return { alg: "EdDSA", key, edPublicHex: rawEd25519Public(key).toString("hex") };
    throw new CredentialConfigError(`${what}: ${key.asymmetricKeyType} keys cannot sign Choria tokens, use RSA or ed25519`);
  }
  throw new CredentialConfigError(`${what} must be a 64 character hex ed25519 seed or a PEM private key`);
}

function stringList(v: unknown, what: string): string[] | undefined {
  if (v == null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new ServerJwtError(`server_claims.${what} must be a list of strings`);
  return v as string[];
}

function permissionsOf(v: unknown): Record<string, boolean> | undefined {
  if (v == null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw new ServerJwtError("server_claims.permissions must be an object");
  const out: Record<string, boolean> = {};
  // Go's struct keeps only these four and omits false ones (omitempty)
  for (const k of ["submission", "streams", "governor", "service_host"] as const) {
    const x = (v as Record<string, unknown>)[k];
    if (x != null && typeof x !== "boolean") throw new ServerJwtError(`server_claims.permissions.${k} must be a boolean`);
    if (x === true) out[k] = true;
  }
  return out;
}

interface ChainIssuer {
  jti: string;
  publicKey: string;
  exp: number;
  tcs: string;
}

function parseChainToken(token: string): ChainIssuer {
  let claims: Record<string, unknown>;
  try {
    claims = decodeJws(token).claims;
  } catch (e) {
    throw new CredentialConfigError(`jwt_signing_token is not a JWT: ${(e as Error).message}`);
  }
  if (claims.purpose !== CLIENT_ID_PURPOSE) throw new CredentialConfigError(`jwt_signing_token must be a client id token (purpose ${CLIENT_ID_PURPOSE}), got ${JSON.stringify(claims.purpose ?? null)}`);
  const { jti, public_key: publicKey, exp, tcs } = claims;
  if (typeof tcs !== "string" || tcs === "") throw new CredentialConfigError("no Trust Chain Signature claim (tcs) in jwt_signing_token");
  if (typeof jti !== "string" || jti === "") throw new CredentialConfigError("jwt_signing_token has no id (jti)");
  // the issuer field is C-<jti>.<pubkey>, split on "." by verifiers: neither part may contain one
  if (jti.includes(".")) throw new CredentialConfigError("jwt_signing_token id (jti) contains a '.'");
  if (typeof publicKey !== "string" || !/^[0-9a-fA-F]{64}$/.test(publicKey)) throw new CredentialConfigError("jwt_signing_token has no ed25519 public_key");
  if (typeof exp !== "number") throw new CredentialConfigError("jwt_signing_token has no expiry (exp)");
  return { jti, publicKey: publicKey.toLowerCase(), exp: Math.floor(exp), tcs };
}

export function signServerJwt(input: ServerJwtInput, signingKey: string, opts: SignServerJwtOptions = {}): SignedServerJwt {
  const warnings: string[] = [];
  const now = opts.now ?? new Date();
  const defaultValidity = opts.validity ?? DEFAULT_SERVER_JWT_VALIDITY_MS;
  if (!(defaultValidity > 0)) throw new CredentialConfigError("server_jwt_validity must be positive");
  if (typeof input.identity !== "string" || input.identity === "") throw new ServerJwtError("identity is required");
  if (typeof input.publicKey !== "string" || !/^[0-9a-fA-F]{64}$/.test(input.publicKey)) throw new ServerJwtError("the node's ed25519 public key (gen25519 public_key) must be 64 hex characters");

  const key = parseSigningKey(signingKey);
  const cfg = input.configuration ?? {};
  const sc = input.serverClaims ?? {};
  if (typeof sc !== "object" || Array.isArray(sc)) throw new ServerJwtError("server_claims must be an object");

  // defaults as generateServerJWT: mcollective, choria for the choria security provider,
  // then the configuration's collectives, then server_claims.collectives
  let collectives = cfg["plugin.security.provider"] === "choria" ? ["choria"] : ["mcollective"];
  if (typeof cfg.collectives === "string") collectives = cfg.collectives.split(",");
  const scCollectives = stringList(sc.collectives, "collectives");
  if (scCollectives && scCollectives.length > 0) collectives = scCollectives;
  if (collectives.length === 0 || collectives.some((c) => c === "")) throw new ServerJwtError(`collectives must be non-empty names, got ${JSON.stringify(collectives)}`);

  if (sc.ou != null && typeof sc.ou !== "string") throw new ServerJwtError("server_claims.ou must be a string");
  const ou = sc.ou || DEFAULT_ORGANIZATION;
  const pubSubjects = stringList(sc.pub_subjects, "pub_subjects");
  const permissions = permissionsOf(sc.permissions);

  let validity = defaultValidity;
  if (sc.exp != null) {
    if (typeof sc.exp !== "number" || !Number.isFinite(sc.exp)) throw new ServerJwtError("server_claims.exp must be Unix seconds");
    validity = sc.exp * 1000 - now.getTime();
  }
  if (validity <= MIN_SERVER_JWT_VALIDITY_MS) {
    warnings.push(`server validity ${Math.round(validity / 1000)}s is too short, using server_jwt_validity (${Math.round(defaultValidity / 1000)}s)`);
    validity = defaultValidity;
  }

  // jwt.NumericDate truncates to seconds: iat is now truncated, exp is iat + validity truncated.
  // The jti KSUID must embed exactly iat (tokens refuses chained tokens where they differ).
  const iat = Math.floor(now.getTime() / 1000);
  let exp = iat + Math.floor(validity / 1000);
  const jti = newKsuid(new Date(iat * 1000));

  let iss = SERVER_JWT_ISSUER;
  let issexp: number | undefined;
  let tcs: string | undefined;
  if (opts.chainToken) {
    const chain = parseChainToken(opts.chainToken);
    const chainKey = opts.issuerSeed !== undefined ? parseSigningKey(opts.issuerSeed, "issuer seed") : key;
    if (!chainKey.edPublicHex) throw new CredentialConfigError("chaining to jwt_signing_token needs an ed25519 signing key (seed)");
    // the verifier checks our signature with the key named in iss; a mismatch is dead on arrival
    if (chainKey.edPublicHex !== chain.publicKey) throw new CredentialConfigError("the signing key does not belong to jwt_signing_token (its public_key differs)");
    if (key.alg !== "EdDSA" || key.edPublicHex !== chain.publicKey) throw new CredentialConfigError("a chained server JWT must be signed with the chain issuer's ed25519 key");
    if (chain.exp * 1000 <= now.getTime()) throw new CredentialConfigError(`jwt_signing_token expired at ${new Date(chain.exp * 1000).toISOString()}`);
    iss = `${CHAIN_ISSUER_PREFIX}${chain.jti}.${chain.publicKey}`;
    issexp = chain.exp;
    if (chain.exp < exp) exp = chain.exp;
    const sig = cryptoSign(null, Buffer.from(`${jti}.${chain.tcs}`, "utf8"), chainKey.key);
    tcs = `${chain.tcs}.${sig.toString("hex")}`;
  }

  // Go's field order: ServerClaims, then StandardClaims, then RegisteredClaims
  const claims: Record<string, unknown> = { identity: input.identity, collectives };
  if (permissions) claims.permissions = permissions;
  claims.ou = ou;
  if (pubSubjects && pubSubjects.length > 0) claims.pub_subjects = pubSubjects;
  claims.purpose = SERVER_PURPOSE;
  if (tcs) claims.tcs = tcs;
  claims.public_key = input.publicKey.toLowerCase();
  if (issexp !== undefined) claims.issexp = issexp;
  claims.iss = iss;
  claims.exp = exp;
  claims.nbf = iat;
  claims.iat = iat;
  claims.jti = jti;

  return { token: signJws(key.alg, claims, key.key), claims, alg: key.alg, warnings };
}
