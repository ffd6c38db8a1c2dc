/**
 * The strict checks a simulated node applies to what `configure` delivers. The real server
 * writes whatever it gets; the simulator replies exactly as it would, but records every way
 * the delivery would have left a broken node, so provisioner bugs show up in the report.
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { bytesEqual } from "../der/reader.js";
import { SIGNATURE_ALGORITHMS, X509_OID, nameString, readCertificateDer, type ParsedCertificateDer } from "../der/x509.js";
import type { CertificateRecord } from "./node.js";

export interface Finding {
  kind: string;
  detail: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n([\s\S]+?)-----END CERTIFICATE-----/g;

interface CaCert {
  cert: ParsedCertificateDer;
  publicKey: KeyObject;
}

// Every node of a fleet gets the same CA bundle: parsing it once instead of per configure
// took ~1/3 of the simulator's CPU off the cores it shares with the provisioner in `npm run bench`.
// Keyed by the exact PEM text, so a different or broken bundle is still parsed and judged.
const bundleCache = new Map<string, CaCert[] | undefined>();

function parseCaBundle(pemText: string): CaCert[] | undefined {
  if (bundleCache.has(pemText)) return bundleCache.get(pemText);
  let cas: CaCert[] | undefined;
  try {
    cas = parseBundle(pemText)?.map((cert) => ({ cert, publicKey: createPublicKey({ key: Buffer.from(cert.spki.der), format: "der", type: "spki" }) }));
  } catch {
    cas = undefined;
  }
  if (bundleCache.size >= 16) bundleCache.clear();
  bundleCache.set(pemText, cas);
  return cas;
}

// src/der rather than node's X509Certificate: OpenSSL 3's decode of each delivered certificate
// was the simulator's largest cost after the node's own RSA signature (bench/README.md,
// "Figures behind the code").
function parseBundle(pemText: string): ParsedCertificateDer[] | undefined {
  const blocks = [...pemText.matchAll(CERT_BLOCK)];
  if (blocks.length === 0) return undefined;
  try {
    return blocks.map((m) => readCertificateDer(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"))));
  } catch {
    return undefined;
  }
}

/** what OpenSSL's check_issued + verify decide for our purposes: issuer name bytes, CA flag, signature */
function issuedBy(c: ParsedCertificateDer, issuer: CaCert): boolean {
  if (!issuer.cert.isCa || !bytesEqual(c.issuerDer, issuer.cert.subjectDer)) return false;
  const alg = SIGNATURE_ALGORITHMS[c.signatureAlgorithm];
  if (!alg) return false;
  try {
    return verify(alg.hash, c.tbs, issuer.publicKey, c.signature);
  } catch {
    return false;
  }
}

function names(cert: ParsedCertificateDer): string[] {
  const cns = cert.subject.filter((a) => a.type === X509_OID.commonName).map((a) => a.value);
  // DNS names only: the other SAN kinds carry a prefix (email:, uri:) or are IP addresses, and
  // neither DNS names nor IPv4 addresses contain a colon
  return [...cns, ...cert.sans.filter((n) => !n.includes(":") && !/^[\d.]+$/.test(n))];
}

export function checkDeliveredCertificate(o: { identity: string; certificate: string; ca: string; publicKey: KeyObject | Uint8Array; now?: number }): { record?: CertificateRecord; findings: Finding[] } {
  const findings: Finding[] = [];
  const certs = parseBundle(o.certificate);
  if (!certs || certs.length === 0) return { findings: [{ kind: "certificate_not_pem", detail: "certificate is not a PEM X.509 certificate" }] };
  const cert = certs[0]!;
  const record: CertificateRecord = { subject: nameString(cert.subject), issuer: nameString(cert.issuer), serial: cert.serial, validTo: new Date(cert.notAfter).toISOString() };

  const spki = o.publicKey instanceof Uint8Array ? o.publicKey : new Uint8Array(o.publicKey.export({ format: "der", type: "spki" }));
  if (!bytesEqual(spki, cert.spki.der)) findings.push({ kind: "certificate_key_mismatch", detail: "certificate public key is not the node's key" });

  const n = names(cert);
  if (!n.includes(o.identity)) findings.push({ kind: "certificate_identity_mismatch", detail: `certificate names ${JSON.stringify(n)} do not include ${o.identity}` });

  const now = o.now ?? Date.now();
  if (now < cert.notBefore || now > cert.notAfter) {
    findings.push({ kind: "certificate_not_valid_now", detail: `valid ${new Date(cert.notBefore).toISOString()} .. ${new Date(cert.notAfter).toISOString()}` });
  }

  const cas = parseCaBundle(o.ca);
  if (!cas || cas.length === 0) {
    findings.push({ kind: "ca_not_pem", detail: "ca is not a PEM X.509 certificate" });
  } else {
    // the leaf must be issued by one of the delivered CAs (or by an intermediate sent after it
    // in the certificate bundle that itself chains to a delivered CA)
    let ok = cas.some((ca) => issuedBy(cert, ca));
    if (!ok && certs.length > 1) {
      const inters = certs.slice(1).map((c) => ({ cert: c, publicKey: createPublicKey({ key: Buffer.from(c.spki.der), format: "der", type: "spki" }) }));
      const inter = inters.find((i) => issuedBy(cert, i));
      ok = !!inter && cas.some((ca) => issuedBy(inter.cert, ca));
    }
    if (!ok) findings.push({ kind: "certificate_not_signed_by_ca", detail: `certificate issued by "${record.issuer}" does not verify against the delivered ca` });
  }
  return { record, findings };
}
