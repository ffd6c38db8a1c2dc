/**
 * Private-key transport to a node (§7.4). The node hands out an X25519 public key with every
 * `jwt` call; we make our own pair, derive the 32-byte shared secret and encrypt the RSA key the
 * way Go's x509.EncryptPEMBlock (legacy OpenSSL "traditional" PEM encryption) does, because that
 * is what the node's x509.DecryptPEMBlock expects:
 *
 *   AES-256-CBC, random 16-byte IV, PKCS#7 padding,
 *   key = EVP_BytesToKey(MD5, password = raw shared secret, salt = IV[0..8], 1 iteration),
 *   PEM "RSA PRIVATE KEY" with Proc-Type: 4,ENCRYPTED and DEK-Info: AES-256-CBC,<iv hex>
 *
 * The clear key only ever exists in the caller's input and in decryptKeyFromProvisioner's
 * return value; no error message carries key material.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { encodePem } from "../der/pem.js";
import { KeyTransportError } from "./errors.js";

const PEM_TYPE = "RSA PRIVATE KEY";
const CIPHER_NAME = "AES-256-CBC";

/** EVP_BytesToKey with MD5, one iteration: D_i = MD5(D_{i-1} || password || salt) until keyLen bytes. */
export function evpBytesToKey(password: Uint8Array, salt: Uint8Array, keyLen: number): Buffer {
  const out: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(0);
  let have = 0;
  while (have < keyLen) {
    prev = createHash("md5").update(prev).update(password).update(salt).digest();
    out.push(prev);
    have += prev.length;
  }
  return Buffer.concat(out).subarray(0, keyLen);
}

export interface EcdhKeyPair {
  privateKey: KeyObject;
  /** 64 lowercase hex characters, the form `jwt`/`configure` carry as ecdh_public */
  publicHex: string;
}

export function generateEcdhKeyPair(): EcdhKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { privateKey, publicHex: Buffer.from(String(publicKey.export({ format: "jwk" }).x), "base64url").toString("hex") };
}

function x25519Public(hex: string, who: string): KeyObject {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]{64}$/.test(hex)) throw new KeyTransportError("bad_public_key", `${who} ECDH public key must be 64 hex characters`);
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(hex, "hex").toString("base64url") }, format: "jwk" });
}

/** Accepts a KeyObject or the raw 32-byte private scalar as hex (Go keeps it as raw bytes). */
function x25519Private(k: KeyObject | string): KeyObject {
  if (typeof k !== "string") {
    if (k.type !== "private" || k.asymmetricKeyType !== "x25519") throw new KeyTransportError("bad_private_key", "ECDH private key must be an X25519 private key");
    return k;
  }
  if (!/^[0-9a-fA-F]{64}$/.test(k)) throw new KeyTransportError("bad_private_key", "ECDH private key must be 64 hex characters");
  const d = Buffer.from(k, "hex");
  // RFC 8410 PKCS#8 prefix for an X25519 private key; OpenSSL derives the public half itself
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), d]);
  return createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
}

/** X25519(priv, peer); refuses the all-zero result a low-order peer point gives, as Go's curve25519.X25519 does. */
function sharedSecret(priv: KeyObject, peer: KeyObject): Buffer {
  let s: Buffer;
  try {
    s = diffieHellman({ privateKey: priv, publicKey: peer });
  } catch {
    throw new KeyTransportError("bad_public_key", "X25519 key agreement failed: the peer public key is a low-order point");
  }
  if (s.every((b) => b === 0)) throw new KeyTransportError("bad_public_key", "X25519 key agreement failed: the peer public key is a low-order point");
  return s;
}

/** The RSA key as PKCS#1 DER, whatever unencrypted PEM form the helper or CA gave it in. */
function rsaPkcs1Der(keyPem: string): Buffer {
  if (typeof keyPem !== "string" || !keyPem.includes("-----BEGIN ")) throw new KeyTransportError("bad_input_key", "key to deliver is not a PEM");
  if (/Proc-Type:\s*4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(keyPem)) throw new KeyTransportError("bad_input_key", "key to deliver is already encrypted");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: "pem" });
  } catch {
    throw new KeyTransportError("bad_input_key", "key to deliver is not a parseable private key");
  }
  // the node writes what it decrypts as private.pem labelled RSA PRIVATE KEY, so it must be PKCS#1 RSA
  if (key.asymmetricKeyType !== "rsa") throw new KeyTransportError("bad_input_key", `key to deliver is ${key.asymmetricKeyType}, only RSA keys can be delivered`);
  return key.export({ type: "pkcs1", format: "der" });
}

export interface EncryptedKeyForNode {
  /** the `key` input of choria_provision#configure */
  encryptedPem: string;
  /** the `ecdh_public` input of choria_provision#configure: our one-off X25519 public key */
  ecdhPublicHex: string;
}

/**
 * Encrypts keyPem for the node whose latest `jwt` reply carried nodeEcdhPublicHex. A fresh
 * X25519 pair is made per call: the node only keeps the key from its most recent `jwt`, so a
 * retried `jwt` means the caller must encrypt again with the new node key.
 */
export function encryptKeyForNode(keyPem: string, nodeEcdhPublicHex: string): EncryptedKeyForNode {
  const der = rsaPkcs1Der(keyPem);
  const peer = x25519Public(nodeEcdhPublicHex, "node");
  const mine = generateEcdhKeyPair();
  const secret = sharedSecret(mine.privateKey, peer);
  const encryptedPem = legacyPemEncrypt(der, secret);
  // best effort: do not leave the secret or the clear DER lying in our buffers
  secret.fill(0);
  der.fill(0);
  return { encryptedPem, ecdhPublicHex: mine.publicHex };
}

/**
 * Traditional OpenSSL PEM encryption of a PKCS#1 RSA key (x509.EncryptPEMBlock with
 * PEMCipherAES256). Exposed so tests can prove the format against the openssl CLI with a text
 * password; key transport passes the raw X25519 secret as the password.
 */
export function legacyPemEncrypt(pkcs1Der: Uint8Array, password: Uint8Array): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-cbc", evpBytesToKey(password, iv.subarray(0, 8), 32), iv);
  const body = Buffer.concat([cipher.update(pkcs1Der), cipher.final()]);
  // Go writes the IV hex in lowercase (hex.EncodeToString); Go and OpenSSL decoders accept either case
  return encodePem(PEM_TYPE, body, [["Proc-Type", "4,ENCRYPTED"], ["DEK-Info", `${CIPHER_NAME},${iv.toString("hex")}`]]);
}

/** Inverse of legacyPemEncrypt (x509.DecryptPEMBlock): returns the PKCS#1 DER. */
export function legacyPemDecrypt(encryptedPem: string, password: Uint8Array): Buffer {
  const m = /-----BEGIN RSA PRIVATE KEY-----\r?\n([\s\S]*?)-----END RSA PRIVATE KEY-----/.exec(encryptedPem ?? "");
  if (!m) throw new KeyTransportError("bad_format", "no RSA PRIVATE KEY PEM block");
  const inner = m[1]!;
  const split = /\r?\n\r?\n/.exec(inner);
  const headerText = split ? inner.slice(0, split.index) : "";
  if (!split || !/^Proc-Type:\s*4,ENCRYPTED\s*$/m.test(headerText)) throw new KeyTransportError("not_encrypted", "key is not encrypted");
  const dek = /^DEK-Info:\s*([A-Za-z0-9-]+),([0-9A-Fa-f]+)\s*$/m.exec(headerText);
  if (!dek || dek[1]!.toUpperCase() !== CIPHER_NAME || dek[2]!.length !== 32) throw new KeyTransportError("bad_format", `DEK-Info must be ${CIPHER_NAME} with a 16-byte IV`);
  const iv = Buffer.from(dek[2]!, "hex");
  const body = Buffer.from(inner.slice(split.index + split[0].length).replace(/\s+/g, ""), "base64");
  let der: Buffer;
  try {
    const d = createDecipheriv("aes-256-cbc", evpBytesToKey(password, iv.subarray(0, 8), 32), iv);
    der = Buffer.concat([d.update(body), d.final()]);
  } catch {
    throw new KeyTransportError("decrypt_failed", "decryption password incorrect");
  }
  try {
    // wrong keys pass the padding check about 1 in 256 times; the DER then does not parse
    createPrivateKey({ key: der, format: "der", type: "pkcs1" });
  } catch {
    throw new KeyTransportError("decrypt_failed", "decryption password incorrect");
  }
  return der;
}

/**
 * The node's side: derive the secret from the private key of the node's latest `jwt` call and
 * decrypt. Returns the clear PKCS#1 PEM. For tests and the simulator; the daemon never decrypts.
 */
export function decryptKeyFromProvisioner(encryptedPem: string, nodePrivateKey: KeyObject | string, provisionerPublicHex: string): string {
  const secret = sharedSecret(x25519Private(nodePrivateKey), x25519Public(provisionerPublicHex, "provisioner"));
  try {
    const der = legacyPemDecrypt(encryptedPem, secret);
    return createPrivateKey({ key: der, format: "der", type: "pkcs1" }).export({ type: "pkcs1", format: "pem" }).toString();
  } finally {
    secret.fill(0);
  }
}
