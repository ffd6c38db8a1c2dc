/**
 * The strict checks a simulated node applies to what `configure` delivers. The real server
 * writes whatever it gets; the simulator replies exactly as it would, but records every way
 * the delivery would have left a broken node, so provisioner bugs show up in the report.
 */
import { X509Certificate, type KeyObject } from "node:crypto";
import type { CertificateRecord } from "./node.js";

export interface Finding {
  kind: string;
  detail: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

// Every node of a fleet gets the same CA bundle: parsing it once instead of per configure
// took ~1/3 of the simulator's CPU (with the key compare below) off the cores it shares with
// the provisioner in `npm run bench` (fleet CPU for 10k nodes 10.2 s -> 6.9 s).
// Keyed by the exact PEM text, so a different or broken bundle is still parsed and judged.
const bundleCache = new Map<string, X509Certificate[] | undefined>();

function parseCaBundle(pemText: string): X509Certificate[] | undefined {
  if (bundleCache.has(pemText)) return bundleCache.get(pemText);
  const certs = parseBundle(pemText);
  if (bundleCache.size >= 16) bundleCache.clear();
  bundleCache.set(pemText, certs);
  return certs;
}

function parseBundle(pemText: string): X509Certificate[] | undefined {
  const blocks = pemText.match(CERT_BLOCK);
  if (!blocks) return undefined;
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return undefined;
  }
}

/** "CN=a\nO=b" (node's multi-line form) -> "CN=a, O=b" */
function oneLine(dn: string): string {
  return dn.split("\n").filter(Boolean).join(", ");
}

function names(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) out.push(line.slice(3));
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) if (part.startsWith("DNS:")) out.push(part.slice(4));
  return out;
}

export function checkDeliveredCertificate(o: { identity: string; certificate: string; ca: string; publicKey: KeyObject; now?: number }): { record?: CertificateRecord; findings: Finding[] } {
  const findings: Finding[] = [];
  const certs = parseBundle(o.certificate);
  if (!certs || certs.length === 0) return { findings: [{ kind: "certificate_not_pem", detail: "certificate is not a PEM X.509 certificate" }] };
  const cert = certs[0];
  const record: CertificateRecord = { subject: oneLine(cert.subject), issuer: oneLine(cert.issuer), serial: cert.serialNumber, validTo: new Date(cert.validTo).toISOString() };

  // KeyObject.equals compares the keys themselves; exporting both to SPKI DER cost ~140 µs each
  if (!o.publicKey.equals(cert.publicKey)) findings.push({ kind: "certificate_key_mismatch", detail: "certificate public key is not the node's key" });

  const n = names(cert);
  if (!n.includes(o.identity)) findings.push({ kind: "certificate_identity_mismatch", detail: `certificate names ${JSON.stringify(n)} do not include ${o.identity}` });

  const now = o.now ?? Date.now();
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    findings.push({ kind: "certificate_not_valid_now", detail: `valid ${cert.validFrom} .. ${cert.validTo}` });
  }

  const cas = parseCaBundle(o.ca);
  if (!cas || cas.length === 0) {
    findings.push({ kind: "ca_not_pem", detail: "ca is not a PEM X.509 certificate" });
  } else {
    // the leaf must be issued by one of the delivered CAs (or by an intermediate sent after it
    // in the certificate bundle that itself chains to a delivered CA)
    const signedBy = (c: X509Certificate, issuers: X509Certificate[]): X509Certificate | undefined => issuers.find((i) => c.checkIssued(i) && c.verify(i.publicKey));
    let ok = !!signedBy(cert, cas);
    if (!ok && certs.length > 1) {
      const inter = signedBy(cert, certs.slice(1));
      ok = !!inter && !!signedBy(inter, cas);
    }
    if (!ok) findings.push({ kind: "certificate_not_signed_by_ca", detail: `certificate issued by "${record.issuer}" does not verify against the delivered ca` });
  }
  return { record, findings };
}
