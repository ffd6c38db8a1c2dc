/**
 * Compact JWS (RFC 7515) encode/decode on node:crypto, limited to what Choria uses: RS256/384/512
 * and EdDSA (Ed25519). Kept dependency-free because the whole surface is split, base64url and one
 * crypto.verify call; a JWT library would add policy (clock skew, claim checks) we must match to Go.
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { JwtVerifyError } from "./errors.js";

export type JwsAlg = "RS256" | "RS384" | "RS512" | "EdDSA";
export const SUPPORTED_ALGS: readonly JwsAlg[] = ["RS256", "RS384", "RS512", "EdDSA"];

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Go's jwt/v5 decodes segments with RawURLEncoding: no padding, URL alphabet, nothing else. */
export function decodeB64url(s: string, what: string): Buffer {
  if (!B64URL.test(s) || s.length % 4 === 1) throw new JwtVerifyError("malformed", `${what} is not base64url`);
  return Buffer.from(s, "base64url");
}

export function encodeB64url(b: Uint8Array | string): string {
  return Buffer.from(typeof b === "string" ? Buffer.from(b, "utf8") : b).toString("base64url");
}

function parseObject(buf: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString("utf8"));
  } catch {
    throw new JwtVerifyError("malformed", `${what} is not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new JwtVerifyError("malformed", `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

export interface DecodedJws {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** "<header>.<payload>" exactly as received: what the signature covers */
  signingInput: Buffer;
  signature: Buffer;
}

/** Splits and decodes without verifying anything; throws JwtVerifyError("malformed"). */
export function decodeJws(token: string): DecodedJws {
  if (typeof token !== "string") throw new JwtVerifyError("malformed", "token is not a string");
  // the node returns the file contents untrimmed (§4.2 jwt), so a trailing newline is normal
  const t = token.trim();
  const parts = t.split(".");
  if (parts.length !== 3) throw new JwtVerifyError("malformed", `expected 3 dot-separated segments, got ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  const header = parseObject(decodeB64url(h, "header"), "header");
  const claims = parseObject(decodeB64url(p, "payload"), "payload");
  const signature = decodeB64url(s, "signature");
  return { header, claims, signingInput: Buffer.from(`${h}.${p}`, "ascii"), signature };
}

function digestFor(alg: JwsAlg): string | null {
  switch (alg) {
    case "RS256":
      return "sha256";
    case "RS384":
      return "sha384";
    case "RS512":
      return "sha512";
    case "EdDSA":
      return null;
  }
}

export function verifyJwsSignature(alg: JwsAlg, signingInput: Buffer, signature: Buffer, key: KeyObject): boolean {
  try {
    return cryptoVerify(digestFor(alg), signingInput, key, signature);
  } catch {
    // wrong-sized signatures and the like: not a valid signature
    return false;
  }
}

/** Serialises header then claims in insertion order (we build them in Go's field order). */
export function signJws(alg: JwsAlg, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${encodeB64url(JSON.stringify({ alg, typ: "JWT" }))}.${encodeB64url(JSON.stringify(claims))}`;
  const sig = cryptoSign(digestFor(alg), Buffer.from(input, "ascii"), key);
  return `${input}.${encodeB64url(sig)}`;
}
