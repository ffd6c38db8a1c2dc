/**
 * The fields of PKCS#10 requests (RFC 2986) and X.509 certificates (RFC 5280) that a
 * provisioner and a provisioning-mode node look at, read straight from DER with reader.ts.
 * Structure only: no signature checks, no key imports (callers do those with node:crypto).
 */
import ipaddr from "ipaddr.js";
import { DerError, TAGS, bitStringBytes, children, content, expectTlv, oidString, raw, readRoot, readTlv, stringValue, timeValue, type Tlv } from "./reader.js";

export const X509_OID = {
  commonName: "2.5.4.3",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  ed25519: "1.3.101.112",
} as const;

/**
 * The signature algorithms either side accepts, with the digest node:crypto's verify takes (null
 * for Ed25519) and the key type that must sign with them. SHA-1/MD5 are not here: forgeable.
 */
export const SIGNATURE_ALGORITHMS: Readonly<Record<string, { hash: string | null; key: "rsa" | "ecdsa" | "ed25519" }>> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", key: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", key: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", key: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", key: "ecdsa" },
  "1.2.840.10045.4.3.3": { hash: "sha384", key: "ecdsa" },
  "1.2.840.10045.4.3.4": { hash: "sha512", key: "ecdsa" },
  "1.3.101.112": { hash: null, key: "ed25519" },
};

// node's X509Certificate prints these short names; everything else is shown as its OID
const ATTRIBUTE_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.5": "serialNumber",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC",
};

export interface NameAttribute {
  type: string;
  value: string;
}

export interface SubjectPublicKeyInfo {
  /** the whole SubjectPublicKeyInfo element, as the peer encoded it */
  der: Uint8Array;
  algorithm: string;
  /** the algorithm parameters element when present (the named curve for EC keys) */
  parameterOid?: string;
  /** the subjectPublicKey BIT STRING's bytes */
  key: Uint8Array;
}

export interface ParsedCsrDer {
  /** certificationRequestInfo: the bytes the self-signature covers */
  tbs: Uint8Array;
  subject: NameAttribute[];
  spki: SubjectPublicKeyInfo;
  /** subjectAltName entries requested through an extensionRequest attribute */
  sans: string[];
  signatureAlgorithm: string;
  signature: Uint8Array;
}

export interface ParsedCertificateDer {
  tbs: Uint8Array;
  /** uppercase hex without leading zero bytes, as node's X509Certificate.serialNumber */
  serial: string;
  issuerDer: Uint8Array;
  issuer: NameAttribute[];
  subjectDer: Uint8Array;
  subject: NameAttribute[];
  notBefore: number;
  notAfter: number;
  spki: SubjectPublicKeyInfo;
  sans: string[];
  /** basicConstraints cA */
  isCa: boolean;
  signatureAlgorithm: string;
  signature: Uint8Array;
}

function algorithmOid(buf: Uint8Array, alg: Tlv): string {
  if (alg.tag !== TAGS.sequence) throw new DerError(`expected an AlgorithmIdentifier at byte ${alg.start}`);
  const parts = children(buf, alg);
  if (parts.length < 1 || parts.length > 2) throw new DerError(`malformed AlgorithmIdentifier at byte ${alg.start}`);
  return oidString(buf, parts[0]!);
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue) */
export function readName(buf: Uint8Array, name: Tlv): NameAttribute[] {
  if (name.tag !== TAGS.sequence) throw new DerError(`expected a Name at byte ${name.start}`);
  const out: NameAttribute[] = [];
  for (const rdn of children(buf, name)) {
    if (rdn.tag !== TAGS.set) throw new DerError(`expected a RelativeDistinguishedName at byte ${rdn.start}`);
    for (const atv of children(buf, rdn)) {
      if (atv.tag !== TAGS.sequence) throw new DerError(`expected an AttributeTypeAndValue at byte ${atv.start}`);
      const kv = children(buf, atv);
      if (kv.length !== 2) throw new DerError(`malformed AttributeTypeAndValue at byte ${atv.start}`);
      out.push({ type: oidString(buf, kv[0]!), value: stringValue(buf, kv[1]!) });
    }
  }
  return out;
}

/** "CN=a, O=b": the one-line form of node's X509Certificate subject/issuer */
export function nameString(attrs: NameAttribute[]): string {
  return attrs.map((a) => `${ATTRIBUTE_NAMES[a.type] ?? a.type}=${a.value}`).join(", ");
}

export function readSpki(buf: Uint8Array, t: Tlv): SubjectPublicKeyInfo {
  if (t.tag !== TAGS.sequence) throw new DerError(`expected a SubjectPublicKeyInfo at byte ${t.start}`);
  const parts = children(buf, t);
  if (parts.length !== 2) throw new DerError(`malformed SubjectPublicKeyInfo at byte ${t.start}`);
  const alg = parts[0]!;
  if (alg.tag !== TAGS.sequence) throw new DerError(`expected an AlgorithmIdentifier at byte ${alg.start}`);
  const ap = children(buf, alg);
  if (ap.length < 1 || ap.length > 2) throw new DerError(`malformed AlgorithmIdentifier at byte ${alg.start}`);
  const spki: SubjectPublicKeyInfo = { der: raw(buf, t), algorithm: oidString(buf, ap[0]!), key: bitStringBytes(buf, parts[1]!) };
  if (ap[1]?.tag === TAGS.oid) spki.parameterOid = oidString(buf, ap[1]);
  return spki;
}

// Non-DNS/IP names keep a prefix so they can never accidentally equal an allowed DNS SAN.
function generalName(buf: Uint8Array, t: Tlv): string {
  const c = content(buf, t);
  switch (t.tag) {
    case 0x81:
      return `email:${stringValue(buf, { ...t, tag: TAGS.ia5String })}`;
    case 0x82:
      return stringValue(buf, { ...t, tag: TAGS.ia5String });
    case 0x86:
      return `uri:${stringValue(buf, { ...t, tag: TAGS.ia5String })}`;
    case 0x87:
      return ipString(c);
    default:
      return `othername:${t.tag & 0x1f}`;
  }
}

export function ipString(b: Uint8Array): string {
  if (b.length !== 4 && b.length !== 16) return `ip:${Buffer.from(b).toString("hex")}`;
  return ipaddr.fromByteArray(Array.from(b)).toString();
}

/** SubjectAltName extension value (GeneralNames) -> strings */
function readSans(buf: Uint8Array, value: Tlv): string[] {
  const names = expectTlv(buf, value.contentStart, TAGS.sequence, value.end, "GeneralNames");
  if (names.end !== value.end) throw new DerError(`trailing bytes in subjectAltName at byte ${names.end}`);
  return children(buf, names).map((gn) => generalName(buf, gn));
}

interface Extension {
  id: string;
  critical: boolean;
  value: Tlv;
}

function readExtensions(buf: Uint8Array, exts: Tlv): Extension[] {
  if (exts.tag !== TAGS.sequence) throw new DerError(`expected Extensions at byte ${exts.start}`);
  const seen = new Set<string>();
  return children(buf, exts).map((e) => {
    if (e.tag !== TAGS.sequence) throw new DerError(`expected an Extension at byte ${e.start}`);
    const parts = children(buf, e);
    if (parts.length < 2 || parts.length > 3) throw new DerError(`malformed Extension at byte ${e.start}`);
    const id = oidString(buf, parts[0]!);
    if (seen.has(id)) throw new DerError(`extension ${id} appears twice`);
    seen.add(id);
    const critical = parts.length === 3 && parts[1]!.tag === TAGS.boolean && buf[parts[1]!.contentStart] !== 0;
    const value = parts[parts.length - 1]!;
    if (value.tag !== TAGS.octetString) throw new DerError(`extension ${id} value is not an OCTET STRING`);
    return { id, critical, value };
  });
}

/** PKIX's SIGNED{} shape, shared by CSRs and certificates: SEQUENCE { tbs SEQUENCE, algorithm, signature } */
function readSigned(der: Uint8Array, outer: string, inner: string): [Tlv, Tlv, Tlv] {
  const top = children(der, readRoot(der, TAGS.sequence, outer));
  if (top.length !== 3) throw new DerError(`${outer} has ${top.length} elements, expected 3`);
  if (top[0]!.tag !== TAGS.sequence) throw new DerError(`${inner} is not a SEQUENCE`);
  return top as [Tlv, Tlv, Tlv];
}

export function readCsrDer(der: Uint8Array): ParsedCsrDer {
  const [info, sigAlg, sig] = readSigned(der, "CertificationRequest", "certificationRequestInfo");
  const fields = children(der, info);
  if (fields.length !== 4) throw new DerError(`certificationRequestInfo has ${fields.length} elements, expected 4`);
  const [version, subject, spki, attrs] = fields as [Tlv, Tlv, Tlv, Tlv];
  if (version.tag !== TAGS.integer || version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) throw new DerError("CSR version is not 0 (v1)");
  if (attrs.tag !== 0xa0) throw new DerError("CSR attributes [0] are missing");
  const sans: string[] = [];
  for (const attr of children(der, attrs)) {
    if (attr.tag !== TAGS.sequence) throw new DerError(`expected an Attribute at byte ${attr.start}`);
    const av = children(der, attr);
    if (av.length !== 2 || av[1]!.tag !== TAGS.set) throw new DerError(`malformed Attribute at byte ${attr.start}`);
    if (oidString(der, av[0]!) !== X509_OID.extensionRequest) continue;
    for (const v of children(der, av[1]!)) {
      for (const ext of readExtensions(der, v)) if (ext.id === X509_OID.subjectAltName) sans.push(...readSans(der, ext.value));
    }
  }
  return {
    tbs: raw(der, info),
    subject: readName(der, subject),
    spki: readSpki(der, spki),
    sans,
    signatureAlgorithm: algorithmOid(der, sigAlg),
    signature: bitStringBytes(der, sig),
  };
}

export function readCertificateDer(der: Uint8Array): ParsedCertificateDer {
  const [tbs, sigAlg, sig] = readSigned(der, "Certificate", "tbsCertificate");
  const f = children(der, tbs);
  let i = 0;
  if (f[0]?.tag === 0xa0) i++; // explicit version
  if (f.length < i + 6) throw new DerError("tbsCertificate is too short");
  const serialT = f[i++]!;
  if (serialT.tag !== TAGS.integer) throw new DerError("certificate serial is not an INTEGER");
  i++; // signature AlgorithmIdentifier (repeated outside the TBS, which is what we report)
  const issuerT = f[i++]!;
  const validity = f[i++]!;
  const subjectT = f[i++]!;
  const spkiT = f[i++]!;
  if (validity.tag !== TAGS.sequence) throw new DerError("certificate validity is not a SEQUENCE");
  const [nb, na, ...extra] = children(der, validity);
  if (!nb || !na || extra.length) throw new DerError("certificate validity must hold notBefore and notAfter");
  let sans: string[] = [];
  let isCa = false;
  for (; i < f.length; i++) {
    if (f[i]!.tag !== 0xa3) continue;
    const exts = readTlv(der, f[i]!.contentStart, f[i]!.end);
    for (const ext of readExtensions(der, exts)) {
      if (ext.id === X509_OID.subjectAltName) sans = readSans(der, ext.value);
      else if (ext.id === X509_OID.basicConstraints) {
        const bc = expectTlv(der, ext.value.contentStart, TAGS.sequence, ext.value.end, "BasicConstraints");
        const first = children(der, bc)[0];
        isCa = first?.tag === TAGS.boolean && der[first.contentStart] !== 0;
      }
    }
  }
  let serialBytes = content(der, serialT);
  while (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);
  return {
    tbs: raw(der, tbs),
    serial: Buffer.from(serialBytes).toString("hex").toUpperCase(),
    issuerDer: raw(der, issuerT),
    issuer: readName(der, issuerT),
    subjectDer: raw(der, subjectT),
    subject: readName(der, subjectT),
    notBefore: timeValue(der, nb),
    notAfter: timeValue(der, na),
    spki: readSpki(der, spkiT),
    sans,
    isCa,
    signatureAlgorithm: algorithmOid(der, sigAlg),
    signature: bitStringBytes(der, sig),
  };
}
