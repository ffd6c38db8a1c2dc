/**
 * Verification of the provisioning JWT a node returns from choria_provision#jwt (§7.1, §7.2),
 * with the semantics of the Go provisioner's validateJWT + tokens.ParseProvisioningToken:
 *
 *   1. RS256/RS384/RS512 against an RSA key, EdDSA against an ed25519 key; nothing else
 *   2. exp / nbf when present, no leeway (golang-jwt v5 defaults; iat is not checked)
 *   3. purpose or sub must be "choria_provisioning"
 *   4. a token carrying `tcs` must be chain-issued ("C-" issuer) with `issexp`, and neither
 *      exp nor issexp may have passed
 *
 * The JWT is not bound to the node identity (neither is it in Go).
 */
import { readFileSync, statSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import { previewJson } from "../types/index.js";
import { CredentialConfigError, JwtVerifyError } from "./errors.js";
import { SUPPORTED_ALGS, decodeJws, verifyJwsSignature, type JwsAlg } from "./jws.js";
import { ed25519PublicFromRaw, hexBytes, publicKeyFromPem } from "./keys.js";

export const PROVISIONING_PURPOSE = "choria_provisioning";
export const CHAIN_ISSUER_PREFIX = "C-";
/** Go sets an empty `ou` to this default after parsing. */
export const DEFAULT_ORGANIZATION = "choria";

export interface JwtVerifier {
  kind: "rsa" | "ed25519";
  key: KeyObject;
  /** where the key came from, for log lines ("file /etc/...", "hex value") */
  source: string;
}

export type JwtVerifierInput = JwtVerifier | { pem?: string; ed25519Hex?: string } | string;

export function verifierFromPem(pem: string, source = "PEM"): JwtVerifier {
  const key = publicKeyFromPem(pem);
  // Go's readRSAOrED25519PublicData only takes RSA from PEM; ed25519 keys are configured as hex
  if (key.asymmetricKeyType !== "rsa") throw new CredentialConfigError(`${source}: the PEM holds a ${key.asymmetricKeyType} key, jwt_verify_cert PEMs must be RSA`);
  return { kind: "rsa", key, source };
}

export function verifierFromEd25519Hex(hex: string, source = "hex value"): JwtVerifier {
  return { kind: "ed25519", key: ed25519PublicFromRaw(hexBytes(hex, 32, `${source}: ed25519 public key`)), source };
}

/**
 * jwt_verify_cert semantics: an existing file holds an RSA PEM (certificate or public key) or a
 * hex ed25519 public key; a value that is not an existing path is itself the hex ed25519 key.
 * Whitespace around hex is tolerated (Go's would choke on a trailing newline in the file).
 */
export function loadJwtVerifier(pathOrHex: string): JwtVerifier {
  if (typeof pathOrHex !== "string" || pathOrHex.trim() === "") throw new CredentialConfigError("no JWT verification certificate configured (jwt_verify_cert), cannot validate JWTs");
  let isFile: boolean;
  try {
    isFile = statSync(pathOrHex).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "ENAMETOOLONG") throw new CredentialConfigError(`jwt_verify_cert ${pathOrHex}: ${(e as Error).message}`);
    isFile = false;
  }
  if (!isFile) return verifierFromEd25519Hex(pathOrHex, "jwt_verify_cert value");
  let text: string;
  try {
    text = readFileSync(pathOrHex, "utf8");
  } catch (e) {
    throw new CredentialConfigError(`could not read jwt_verify_cert ${pathOrHex}: ${(e as Error).message}`);
  }
  const source = `file ${pathOrHex}`;
  if (/^\s*-----BEGIN /.test(text)) return verifierFromPem(text, source);
  return verifierFromEd25519Hex(text, source);
}

function resolveVerifier(v: JwtVerifierInput): JwtVerifier {
  if (typeof v === "string") return loadJwtVerifier(v);
  if ("kind" in v && "key" in v) return v;
  const o = v as { pem?: string; ed25519Hex?: string };
  if (o.pem !== undefined && o.ed25519Hex !== undefined) throw new CredentialConfigError("give either pem or ed25519Hex, not both");
  if (o.pem !== undefined) return verifierFromPem(o.pem);
  if (o.ed25519Hex !== undefined) return verifierFromEd25519Hex(o.ed25519Hex);
  throw new CredentialConfigError("no JWT verification key given");
}

// Go unmarshals into typed struct fields; a claim of the wrong JSON type fails the whole parse.
// null is fine (it leaves Go's zero value).
const STRING_CLAIMS = ["cht", "chu", "chsrv", "chrd", "chf", "chusr", "chpwd", "ou", "purpose", "tcs", "public_key", "iss", "sub", "jti"];
const BOOL_CLAIMS = ["chs", "chpd", "v2", "update"];
const DATE_CLAIMS = ["exp", "nbf", "iat", "issexp"];

function checkClaimTypes(c: Record<string, unknown>): void {
  const bad = (k: string, want: string) => new JwtVerifyError("malformed", `claim ${k} must be ${want}, got ${previewJson(c[k], 40)}`);
  for (const k of STRING_CLAIMS) if (c[k] != null && typeof c[k] !== "string") throw bad(k, "a string");
  for (const k of BOOL_CLAIMS) if (c[k] != null && typeof c[k] !== "boolean") throw bad(k, "a boolean");
  for (const k of DATE_CLAIMS) if (c[k] != null && (typeof c[k] !== "number" || !Number.isFinite(c[k]))) throw bad(k, "a number of seconds");
  const ext = c.extensions;
  if (ext != null && (typeof ext !== "object" || Array.isArray(ext))) throw bad("extensions", "an object");
  const aud = c.aud;
  if (aud != null && typeof aud !== "string" && !(Array.isArray(aud) && aud.every((a) => typeof a === "string"))) throw bad("aud", "a string or list of strings");
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

export interface VerifiedProvisioningJwt {
  claims: Record<string, unknown>;
  alg: string;
}

export function verifyProvisioningJwt(token: string, verifier: JwtVerifierInput, now: Date = new Date()): VerifiedProvisioningJwt {
  const v = resolveVerifier(verifier);
  const { header, claims, signingInput, signature } = decodeJws(token);

  const alg = header.alg;
  if (typeof alg !== "string" || !SUPPORTED_ALGS.includes(alg as JwsAlg)) {
    throw new JwtVerifyError("unsupported_alg", `signing method ${previewJson(alg)} is not one of ${SUPPORTED_ALGS.join(", ")}`);
  }
  const wantKind = alg === "EdDSA" ? "ed25519" : "rsa";
  if (v.kind !== wantKind) {
    throw new JwtVerifyError("bad_signature", `token is ${alg}-signed but the verification key (${v.source}) is ${v.kind}; ${wantKind === "rsa" ? "an RSA certificate or public key" : "an ed25519 public key"} is required`);
  }
  checkClaimTypes(claims);
  if (!verifyJwsSignature(alg as JwsAlg, signingInput, signature, v.key)) {
    throw new JwtVerifyError("bad_signature", `${alg} signature does not verify with the key from ${v.source}`);
  }

  const nowMs = now.getTime();
  const exp = claims.exp as number | undefined | null;
  const nbf = claims.nbf as number | undefined | null;
  if (typeof exp === "number" && nowMs >= exp * 1000) throw new JwtVerifyError("expired", `token expired at ${iso(exp)}`);
  if (typeof nbf === "number" && nowMs < nbf * 1000) throw new JwtVerifyError("not_yet_valid", `token is not valid before ${iso(nbf)}`);

  if (claims.purpose !== PROVISIONING_PURPOSE && claims.sub !== PROVISIONING_PURPOSE) {
    throw new JwtVerifyError("not_provisioning", `neither purpose (${JSON.stringify(claims.purpose ?? null)}) nor sub (${JSON.stringify(claims.sub ?? null)}) is "${PROVISIONING_PURPOSE}"`);
  }

  const tcs = claims.tcs;
  if (typeof tcs === "string" && tcs !== "") {
    // tokens.verifyIssuerExpiry(required=true): a chained token needs a chain issuer and its expiry
    const iss = typeof claims.iss === "string" ? claims.iss : "";
    if (!iss.startsWith(CHAIN_ISSUER_PREFIX)) throw new JwtVerifyError("chain_expired", `token has a trust chain signature (tcs) but its issuer ${JSON.stringify(iss)} is not a chain issuer (${CHAIN_ISSUER_PREFIX}...), so its issuer expiry cannot be established`);
    const issexp = claims.issexp;
    if (typeof issexp !== "number") throw new JwtVerifyError("chain_expired", "token has a trust chain signature (tcs) but no issuer expiry (issexp)");
    if (nowMs >= issexp * 1000) throw new JwtVerifyError("chain_expired", `the issuer of this chained token expired at ${iso(issexp)}`);
  }

  const out = { ...claims };
  if (typeof out.ou !== "string" || out.ou === "") out.ou = DEFAULT_ORGANIZATION;
  return { claims: out, alg };
}

/** Claims that hold credentials: the provisioning token and the broker password. */
export const SECRET_CLAIMS: readonly string[] = ["cht", "chpwd"];

/** The claims without secrets, for policies, helper input records, audit and logs. */
export function publicClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) if (!SECRET_CLAIMS.includes(k)) out[k] = v;
  return out;
}
