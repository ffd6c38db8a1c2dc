/**
 * Parses and verifies a PKCS#10 CSR from an untrusted node. Everything here is synchronous
 * (node:crypto, not WebCrypto) so the same code runs in the daemon and inside sign workers
 * without promise overhead, and every failure becomes a CsrRefusedError, never a crash.
 *
 * The structure is read by src/der (strict DER, no object tree) and the public key is imported
 * from its raw parts (PKCS#1 for RSA, JWK coordinates for EC and Ed25519): OpenSSL 3's SPKI
 * decoder was the largest single cost per node in `npm run bench` (bench/README.md, "Figures
 * behind the code").
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { DerError } from "../der/reader.js";
import { SIGNATURE_ALGORITHMS, X509_OID, readCsrDer, type ParsedCsrDer, type SubjectPublicKeyInfo } from "../der/x509.js";
import { CsrRefusedError, type CsrSummary, type KeyType } from "../types/index.js";
import { decodePem, PemError } from "../der/pem.js";

export const DEFAULT_MAX_CSR_BYTES = 16 * 1024;

export interface ParsedCsr {
  summary: CsrSummary;
  /** every CN in the subject (normally exactly one) */
  cns: string[];
  /** the SubjectPublicKeyInfo exactly as the node encoded it: what goes into the certificate */
  spkiDer: Uint8Array;
  /** the subjectPublicKey bits, for the subject key identifier */
  subjectPublicKey: Uint8Array;
  /** null when the key algorithm is one node:crypto cannot load; the signature is then unverified */
  publicKey: KeyObject | null;
  /** the PEM this was parsed from */
  pem: string;
}

// Parses made by parseCsr in this process. A signer handed a ParsedCsr back (to skip a second
// parse and signature check) trusts it only if it is one of these and was made from the very
// PEM it is asked to sign, so no caller can pair a CSR with some other key.
const OWN_PARSES = new WeakSet<object>();

/** `parsed` is parseCsr's own parse of exactly `pem` (self-signature verified). */
export function isOwnParse(parsed: unknown, pem: string): parsed is ParsedCsr {
  return typeof parsed === "object" && parsed !== null && OWN_PARSES.has(parsed) && (parsed as ParsedCsr).pem === pem;
}

// SHA-1/MD5 signatures get their own refusal: forgeable, and a node sending one should be told so
const WEAK_SIG_ALGS: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

/** Summary of the CSR after PEM, DER and self-signature checks. See parseCsr for the details kept. */
export function inspectCsr(csrPem: string, opts: { maxBytes?: number } = {}): CsrSummary {
  return parseCsr(csrPem, opts).summary;
}

export function parseCsr(csrPem: string, opts: { maxBytes?: number } = {}): ParsedCsr {
  if (typeof csrPem !== "string") throw new CsrRefusedError("not_pem", "CSR is not a string");
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CSR_BYTES;
  const size = Buffer.byteLength(csrPem, "utf8");
  if (size > maxBytes) throw new CsrRefusedError("too_large", `CSR is ${size} bytes, the limit is ${maxBytes}`);

  const der = pemCsrDer(csrPem);
  let csr: ParsedCsrDer;
  try {
    csr = readCsrDer(der);
  } catch (e) {
    const why = e instanceof DerError ? e.message : String(e);
    throw new CsrRefusedError("malformed", `CSR is not a valid PKCS#10 structure: ${why}`);
  }
  const cns = csr.subject.filter((a) => a.type === X509_OID.commonName).map((a) => a.value);
  const key = describeKey(csr.spki);
  verifySelfSignature(csr.signatureAlgorithm, csr.tbs, csr.signature, key.publicKey, key.summary.keyType);

  const parsed: ParsedCsr = {
    summary: { cn: cns[0] ?? "", sans: csr.sans, ...key.summary },
    cns,
    // copies: the DER may be a view into a larger buffer that the caller reuses
    spkiDer: csr.spki.der.slice(),
    subjectPublicKey: csr.spki.key.slice(),
    publicKey: key.publicKey,
    pem: csrPem,
  };
  OWN_PARSES.add(parsed);
  return parsed;
}

function pemCsrDer(text: string): Uint8Array {
  let blocks;
  try {
    blocks = decodePem(text);
  } catch (e) {
    throw new CsrRefusedError("not_pem", `CSR is not PEM: ${e instanceof PemError ? e.message : String(e)}`);
  }
  if (blocks.length !== 1) throw new CsrRefusedError("not_pem", `expected exactly one PEM block, found ${blocks.length}`);
  const b = blocks[0]!;
  if (b.label !== "CERTIFICATE REQUEST" && b.label !== "NEW CERTIFICATE REQUEST") {
    throw new CsrRefusedError("not_pem", `expected a CERTIFICATE REQUEST PEM block, found ${b.label}`);
  }
  return b.der;
}

// name is also the JWK crv; coord is the byte length of each point coordinate
const CURVE_OIDS: Record<string, { name: string; bits: number; coord: number }> = {
  "1.2.840.10045.3.1.7": { name: "P-256", bits: 256, coord: 32 },
  "1.3.132.0.34": { name: "P-384", bits: 384, coord: 48 },
  "1.3.132.0.35": { name: "P-521", bits: 521, coord: 66 },
  "1.3.132.0.10": { name: "secp256k1", bits: 256, coord: 32 },
};

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url");

// The cheap imports; null means "use the general SPKI path" (unusual encodings, other algorithms).
function importFast(spki: SubjectPublicKeyInfo): KeyObject | null {
  switch (spki.algorithm) {
    case X509_OID.rsaEncryption:
      return createPublicKey({ key: Buffer.from(spki.key.buffer, spki.key.byteOffset, spki.key.byteLength), format: "der", type: "pkcs1" });
    case X509_OID.ecPublicKey: {
      const c = CURVE_OIDS[spki.parameterOid ?? ""];
      const k = spki.key;
      // uncompressed points only; compressed ones go through OpenSSL
      if (!c || k.length !== 1 + 2 * c.coord || k[0] !== 0x04) return null;
      return createPublicKey({ key: { kty: "EC", crv: c.name, x: b64url(k.subarray(1, 1 + c.coord)), y: b64url(k.subarray(1 + c.coord)) }, format: "jwk" });
    }
    case X509_OID.ed25519:
      if (spki.key.length !== 32) return null;
      return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(spki.key) }, format: "jwk" });
    default:
      return null;
  }
}

function describeKey(spki: SubjectPublicKeyInfo): { publicKey: KeyObject | null; summary: Pick<CsrSummary, "keyType" | "keyBits" | "curve"> } {
  let key: KeyObject;
  try {
    key = importFast(spki) ?? createPublicKey({ key: Buffer.from(spki.der), format: "der", type: "spki" });
  } catch {
    // an algorithm node:crypto does not know, or a key it refuses; the policy refuses it as unsupported_key
    return { publicKey: null, summary: { keyType: "unknown", keyBits: 0 } };
  }
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { publicKey: key, summary: { keyType: "rsa", keyBits: key.asymmetricKeyDetails?.modulusLength ?? 0 } };
    case "ec": {
      const named = CURVE_OIDS[spki.parameterOid ?? ""];
      if (named) return { publicKey: key, summary: { keyType: "ecdsa", keyBits: named.bits, curve: named.name } };
      const nc = key.asymmetricKeyDetails?.namedCurve ?? "unknown";
      return { publicKey: key, summary: { keyType: "ecdsa", keyBits: 0, curve: nc } };
    }
    case "ed25519":
      return { publicKey: key, summary: { keyType: "ed25519", keyBits: 256 } };
    default:
      return { publicKey: null, summary: { keyType: "unknown", keyBits: 0 } };
  }
}

function verifySelfSignature(oid: string, tbs: Uint8Array, signature: Uint8Array, key: KeyObject | null, keyType: KeyType): void {
  if (!key) return;
  const weak = WEAK_SIG_ALGS[oid];
  if (weak) throw new CsrRefusedError("bad_signature", `CSR is signed with ${weak}, which is not accepted`);
  const alg = SIGNATURE_ALGORITHMS[oid];
  if (!alg) throw new CsrRefusedError("bad_signature", `CSR signature algorithm ${oid} is not supported`);
  if (alg.key !== keyType) throw new CsrRefusedError("bad_signature", `CSR signature algorithm ${oid} does not fit its ${keyType} key`);
  let ok: boolean;
  try {
    ok = verify(alg.hash, tbs, key, signature);
  } catch (e) {
    throw new CsrRefusedError("bad_signature", `CSR signature could not be verified: ${(e as Error).message}`);
  }
  if (!ok) throw new CsrRefusedError("bad_signature", "CSR self-signature does not verify: the request was altered or not signed by its key");
}
