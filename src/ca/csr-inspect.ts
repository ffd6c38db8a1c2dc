/**
 * Parses and verifies a PKCS#10 CSR from an untrusted node. Everything here is synchronous
 * (node:crypto, not WebCrypto) so the same code runs in the daemon and inside sign workers
 * without promise overhead, and every failure becomes a CsrRefusedError, never a crash.
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { CsrSummary, KeyType } from "../types/index.js";
import { CsrRefusedError } from "./errors.js";
import { decodePem, PemError } from "./pem.js";
import { OID, ipString, parseDer, subjectValues } from "./x509-util.js";

export const DEFAULT_MAX_CSR_BYTES = 16 * 1024;

export interface ParsedCsr {
  summary: CsrSummary;
  /** every CN in the subject (normally exactly one) */
  cns: string[];
  spki: pkijs.PublicKeyInfo;
  spkiDer: Uint8Array;
  /** null when the key algorithm is one node:crypto cannot load; the signature is then unverified */
  publicKey: KeyObject | null;
}

interface SigAlg {
  hash: string | null;
  key: KeyType;
}

// Only what Choria nodes and sane tooling produce; SHA-1/MD5 are refused as forgeable.
const SIG_ALGS: Record<string, SigAlg> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", key: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", key: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", key: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", key: "ecdsa" },
  "1.2.840.10045.4.3.3": { hash: "sha384", key: "ecdsa" },
  "1.2.840.10045.4.3.4": { hash: "sha512", key: "ecdsa" },
  "1.3.101.112": { hash: null, key: "ed25519" },
};

const WEAK_SIG_ALGS: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

const CURVES: Record<string, { name: string; bits: number }> = {
  prime256v1: { name: "P-256", bits: 256 },
  secp384r1: { name: "P-384", bits: 384 },
  secp521r1: { name: "P-521", bits: 521 },
  secp256k1: { name: "secp256k1", bits: 256 },
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
  let csr: pkijs.CertificationRequest;
  let root: asn1js.Sequence;
  try {
    root = parseDer(der) as asn1js.Sequence;
    csr = new pkijs.CertificationRequest({ schema: root });
  } catch (e) {
    throw new CsrRefusedError("malformed", `CSR is not a valid PKCS#10 structure: ${(e as Error).message}`);
  }

  let cns: string[];
  let sans: string[];
  let spkiDer: Uint8Array;
  try {
    cns = subjectValues(csr.subject, OID.commonName);
    sans = requestedSans(csr);
    // the node's own bytes, not a re-encoding: cheaper, and exactly what goes into the certificate
    const info = root.valueBlock.value[0] as asn1js.Sequence;
    spkiDer = info.valueBlock.value[2]!.valueBeforeDecodeView.slice();
  } catch (e) {
    throw new CsrRefusedError("malformed", `CSR content could not be read: ${(e as Error).message}`);
  }

  const key = describeKey(spkiDer);
  verifySelfSignature(csr, key.publicKey, key.summary.keyType);

  return {
    summary: { cn: cns[0] ?? "", sans, ...key.summary },
    cns,
    spki: csr.subjectPublicKeyInfo,
    spkiDer,
    publicKey: key.publicKey,
  };
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

function requestedSans(csr: pkijs.CertificationRequest): string[] {
  const out: string[] = [];
  for (const attr of csr.attributes ?? []) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const v of attr.values) {
      const exts = new pkijs.Extensions({ schema: v });
      for (const ext of exts.extensions) {
        if (ext.extnID !== OID.subjectAltName) continue;
        const alt = ext.parsedValue as pkijs.AltName | undefined;
        if (!alt || !Array.isArray(alt.altNames)) throw new Error("unparseable subjectAltName");
        for (const gn of alt.altNames) out.push(generalNameString(gn));
      }
    }
  }
  return out;
}

// Non-DNS/IP names keep a prefix so they can never accidentally equal an allowed DNS SAN.
function generalNameString(gn: pkijs.GeneralName): string {
  switch (gn.type) {
    case 1:
      return `email:${String(gn.value)}`;
    case 2:
      return String(gn.value);
    case 6:
      return `uri:${String(gn.value)}`;
    case 7:
      return ipString((gn.value as { valueBlock: { valueHexView: Uint8Array } }).valueBlock.valueHexView);
    default:
      return `othername:${gn.type}`;
  }
}

function describeKey(spkiDer: Uint8Array): { publicKey: KeyObject | null; summary: Pick<CsrSummary, "keyType" | "keyBits" | "curve"> } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch {
    // an algorithm node:crypto does not know; the policy refuses it as unsupported_key
    return { publicKey: null, summary: { keyType: "unknown", keyBits: 0 } };
  }
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { publicKey: key, summary: { keyType: "rsa", keyBits: d.modulusLength ?? 0 } };
    case "ec": {
      const c = CURVES[d.namedCurve ?? ""];
      return { publicKey: key, summary: { keyType: "ecdsa", keyBits: c?.bits ?? 0, curve: c?.name ?? d.namedCurve ?? "unknown" } };
    }
    case "ed25519":
      return { publicKey: key, summary: { keyType: "ed25519", keyBits: 256 } };
    default:
      return { publicKey: null, summary: { keyType: "unknown", keyBits: 0 } };
  }
}

function verifySelfSignature(csr: pkijs.CertificationRequest, key: KeyObject | null, keyType: KeyType): void {
  if (!key) return;
  const oid = csr.signatureAlgorithm.algorithmId;
  const weak = WEAK_SIG_ALGS[oid];
  if (weak) throw new CsrRefusedError("bad_signature", `CSR is signed with ${weak}, which is not accepted`);
  const alg = SIG_ALGS[oid];
  if (!alg) throw new CsrRefusedError("bad_signature", `CSR signature algorithm ${oid} is not supported`);
  if (alg.key !== keyType) throw new CsrRefusedError("bad_signature", `CSR signature algorithm ${oid} does not fit its ${keyType} key`);
  let ok: boolean;
  try {
    ok = verify(alg.hash, csr.tbsView, key, csr.signatureValue.valueBlock.valueHexView);
  } catch (e) {
    throw new CsrRefusedError("bad_signature", `CSR signature could not be verified: ${(e as Error).message}`);
  }
  if (!ok) throw new CsrRefusedError("bad_signature", "CSR self-signature does not verify: the request was altered or not signed by its key");
}
