/**
 * The built-in CA as an intermediate under an offline root: `ca init --intermediate` makes the
 * key and a CSR for the root to sign, `ca import` installs what the root signed after checking
 * it. The checks are about what the root's owner actually sent back, so each failure names the
 * file and the certificate at fault.
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { X509Certificate, createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { signingAlgorithmFor } from "./issue.js";
import { decodePem, encodePem } from "../der/pem.js";
import { OID, parseDer } from "./x509-util.js";

export const CA_CSR_FILE = "ca.csr";
/** the certificates above the issuing CA, its issuer first and the self-signed root last */
export const CA_CHAIN_FILE = "chain.pem";

/** keyCertSign is bit 5 of keyUsage (RFC 5280 §4.2.1.3); as a BIT STRING's first byte, 0x04. */
const KEY_CERT_SIGN = 0x04;

/** A PKCS#10 request for the CA key, CN only, signed with the key; what an offline root signs. */
export function createCaRequest(key: KeyObject, commonName: string): string {
  const spkiDer = createPublicKey(key).export({ format: "der", type: "spki" });
  const alg = signingAlgorithmFor(key);
  const req = new pkijs.CertificationRequest({
    version: 0,
    subject: new pkijs.RelativeDistinguishedNames({
      typesAndValues: [new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: commonName }) })],
    }),
    subjectPublicKeyInfo: new pkijs.PublicKeyInfo({ schema: parseDer(new Uint8Array(spkiDer)) }),
  });
  req.signatureAlgorithm = alg.id;
  // pkijs signs only through WebCrypto; encodeTBS is protected but is exactly the bytes to sign
  const tbs = new Uint8Array((req as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER(false));
  req.tbsView = tbs;
  req.signatureValue = new asn1js.BitString({ valueHex: sign(alg.hash, tbs, key) });
  return encodePem("CERTIFICATE REQUEST", new Uint8Array(req.toSchema(false).toBER(false)));
}

export class ChainError extends Error {
  override name = "ChainError";
}

interface CaFacts {
  cA: boolean;
  pathLen?: number;
  keyCertSign: boolean;
}

function caFacts(der: Uint8Array): CaFacts {
  const cert = new pkijs.Certificate({ schema: parseDer(der) });
  const ext = (oid: string) => cert.extensions?.find((e) => e.extnID === oid);
  const bc = ext(OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
  const ku = ext(OID.keyUsage)?.parsedValue as asn1js.BitString | undefined;
  const kuFirst = ku ? (ku.valueBlock.valueHexView[0] ?? 0) : undefined;
  return {
    cA: bc?.cA === true,
    pathLen: typeof bc?.pathLenConstraint === "number" ? bc.pathLenConstraint : bc?.pathLenConstraint ? Number(bc.pathLenConstraint.valueBlock.valueDec) : undefined,
    // no keyUsage extension at all allows every use (RFC 5280 §4.2.1.3); if present it must say keyCertSign
    keyCertSign: kuFirst === undefined || (kuFirst & KEY_CERT_SIGN) !== 0,
  };
}

function readCertificates(text: string, file: string): X509Certificate[] {
  let blocks;
  try {
    blocks = decodePem(text);
  } catch (e) {
    throw new ChainError(`${file}: ${(e as Error).message}`);
  }
  if (blocks.length === 0) throw new ChainError(`${file}: no certificate`);
  return blocks.map((b, i) => {
    if (b.label !== "CERTIFICATE") throw new ChainError(`${file}: block ${i + 1} is ${b.label}, expected CERTIFICATE`);
    try {
      return new X509Certificate(b.der);
    } catch (e) {
      throw new ChainError(`${file}: certificate ${i + 1} could not be read: ${(e as Error).message}`);
    }
  });
}

function selfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

/**
 * Checks an issuing CA certificate and the chain above it: the certificate holds `key`, is a CA
 * allowed to sign certificates, every certificate is signed by the next, names match as encoded
 * (OpenSSL's checkIssued compares the DER, as Go does), each path length allows the CAs below it,
 * all are valid now, and the chain ends at a self-signed root. Returns the chain in that order.
 */
export function verifyIssuingChain(o: { key: KeyObject; certPem: string; chainPem: string; certFile: string; chainFile: string; now?: Date }): { cert: X509Certificate; chain: X509Certificate[] } {
  const [cert, ...extra] = readCertificates(o.certPem, o.certFile);
  if (extra.length > 0) throw new ChainError(`${o.certFile}: holds ${extra.length + 1} certificates; give the CA certificate alone and its issuers in the chain file`);
  const chain = readCertificates(o.chainPem, o.chainFile);
  const now = o.now ?? new Date();
  if (!cert!.checkPrivateKey(o.key)) throw new ChainError(`${o.certFile}: the certificate is not for this CA's key (was it signed from another CSR?)`);
  const all = [cert!, ...chain];
  all.forEach((c, i) => {
    const where = i === 0 ? o.certFile : `${o.chainFile} certificate ${i} (${c.subject.replace(/\n/g, ", ")})`;
    const f = caFacts(new Uint8Array(c.raw));
    if (!f.cA) throw new ChainError(`${where}: not a CA certificate (basicConstraints CA:TRUE missing)`);
    if (!f.keyCertSign) throw new ChainError(`${where}: keyUsage does not allow certificate signing (keyCertSign)`);
    // i CAs lie between this one and the leaves it (indirectly) certifies; pathlen counts them
    if (f.pathLen !== undefined && f.pathLen < i) throw new ChainError(`${where}: path length ${f.pathLen} does not allow the ${i} CA certificate(s) below it`);
    if (new Date(c.validFrom) > now || new Date(c.validTo) <= now) throw new ChainError(`${where}: not valid now (valid ${new Date(c.validFrom).toISOString()} .. ${new Date(c.validTo).toISOString()})`);
    const issuer = all[i + 1];
    if (!issuer) {
      if (!selfSigned(c)) throw new ChainError(`${where}: the chain ends at a certificate that is not self-signed; ${o.chainFile} must end with the root`);
      return;
    }
    if (selfSigned(c)) throw new ChainError(`${where}: is self-signed but more certificates follow it; the root must be last`);
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) {
      throw new ChainError(`${where}: is not signed by the next certificate (${issuer.subject.replace(/\n/g, ", ")}); ${o.chainFile} must list the issuer first and the root last`);
    }
  });
  return { cert: cert!, chain };
}

/** Reads the CA key of a directory where `ca init --intermediate` ran. */
export function readPendingKey(dir: string, keyPath: string): KeyObject {
  if (!existsSync(keyPath)) throw new Error(`no CA key at ${keyPath}; create one with: choria-provisioner ca init --intermediate --dir ${dir}`);
  return createPrivateKey(readFileSync(keyPath));
}

export function removePendingRequest(dir: string): void {
  rmSync(join(dir, CA_CSR_FILE), { force: true });
}
