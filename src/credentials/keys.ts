/** Turning configured key text (PEM, hex seed, hex public key) into node:crypto KeyObjects. */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { CredentialConfigError } from "./errors.js";

const HEX = /^[0-9a-fA-F]*$/;

/** Strict hex of an exact byte length; Go's hex.DecodeString accepts either case. */
export function hexBytes(s: string, bytes: number, what: string): Buffer {
  const t = s.trim();
  if (!HEX.test(t) || t.length !== bytes * 2) throw new CredentialConfigError(`${what} must be ${bytes * 2} hex characters (${bytes} bytes)`);
  return Buffer.from(t, "hex");
}

export function ed25519PublicFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
}

/** An ed25519 private key from its 32-byte seed (what Choria stores hex-encoded in *.seed files). */
export function ed25519PrivateFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new CredentialConfigError("an ed25519 seed must be 32 bytes");
  // RFC 8410 PKCS#8 prefix for an Ed25519 private key, followed by the 32-byte seed
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seed)]);
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

export function rawEd25519Public(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  if (jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new CredentialConfigError("not an ed25519 key");
  return Buffer.from(jwk.x, "base64url");
}

/** Public key from a PEM certificate or public key (SPKI, or PKCS#1 "RSA PUBLIC KEY"). */
export function publicKeyFromPem(pem: string): KeyObject {
  const text = pem.trimStart();
  try {
    if (text.startsWith("-----BEGIN CERTIFICATE")) return new X509Certificate(text).publicKey;
    return createPublicKey(text);
  } catch (e) {
    throw new CredentialConfigError(`could not parse the PEM public key or certificate: ${(e as Error).message}`);
  }
}
