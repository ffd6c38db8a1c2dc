/**
 * Certificate issuing. The CA certificate is built entirely with pkijs (once per CA); leaves
 * reuse pkijs-encoded constant parts and are spliced by der.ts (see there for why). Signatures
 * come from node:crypto with a KeyObject imported once per thread: synchronous, and far cheaper
 * per certificate than WebCrypto's promise round trip and key re-import.
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { CsrRefusedError, isDnsName, type CertificateProfile, type IssuedLeaf } from "../types/index.js";
import type { ParsedCsr } from "./csr-inspect.js";
import { TAG, ascii, concat, derTime, tlv, utf8 } from "../der/writer.js";
import { encodePem } from "../der/pem.js";
import { ipString } from "../der/x509.js";
import { OID, ipBytes, isIpSan, parseDer, positiveSerial, toHex } from "./x509-util.js";

/** Backdating absorbs clock skew between the provisioner and nodes. */
export const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface IssuedCertificate {
  der: Uint8Array;
  pem: string;
  serial: string;
  fingerprint: string;
  notAfter: string;
  /** what the ledger records, as a parse of `der` gives it (leaves only): no re-parse on the main thread */
  leaf?: IssuedLeaf;
}

interface SigningAlgorithm {
  hash: string;
  id: pkijs.AlgorithmIdentifier;
}

function sha1(b: Uint8Array): Uint8Array {
  return createHash("sha1").update(b).digest();
}

export function signingAlgorithmFor(key: KeyObject): SigningAlgorithm {
  if (key.asymmetricKeyType === "rsa") {
    return { hash: "sha256", id: new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha256WithRSA, algorithmParams: new asn1js.Null() }) };
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return { hash: "sha256", id: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaWithSHA256 }) };
    if (curve === "secp384r1") return { hash: "sha384", id: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaWithSHA384 }) };
    throw new Error(`CA key curve ${curve} is not supported (P-256 or P-384)`);
  }
  throw new Error(`CA key type ${key.asymmetricKeyType} is not supported (RSA or ECDSA)`);
}

export function extension(extnID: string, critical: boolean, value: asn1js.AsnType | pkijs.PkiObject): pkijs.Extension {
  const schema = value instanceof pkijs.PkiObject ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

function keyUsage(bits: number, unusedBits: number): asn1js.BitString {
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits });
}

// UTCTime cannot express 2050 and later (RFC 5280 §4.1.2.5).
export function x509Time(d: Date): pkijs.Time {
  return new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? pkijs.TimeType.GeneralizedTime : pkijs.TimeType.UTCTime, value: d });
}

function finish(cert: pkijs.Certificate, key: KeyObject, alg: SigningAlgorithm): Uint8Array {
  cert.signature = alg.id;
  cert.signatureAlgorithm = alg.id;
  const tbs = new Uint8Array(cert.encodeTBS().toBER(false));
  cert.tbsView = tbs;
  cert.signatureValue = new asn1js.BitString({ valueHex: sign(alg.hash, tbs, key) });
  return new Uint8Array(cert.toSchema(false).toBER(false));
}

function issued(der: Uint8Array, serial: Uint8Array, notAfter: Date, leaf?: IssuedLeaf): IssuedCertificate {
  return { der, pem: encodePem("CERTIFICATE", der), serial: toHex(serial), fingerprint: createHash("sha256").update(der).digest("hex"), notAfter: notAfter.toISOString(), ...(leaf ? { leaf } : {}) };
}

/** Self-signed CA certificate: basicConstraints CA (path length 0: it only issues leaves), keyCertSign+cRLSign, SKI=AKI. */
export function createCaCertificate(key: KeyObject, opts: { commonName: string; validityDays: number; now?: Date }): IssuedCertificate {
  const now = opts.now ?? new Date();
  const spkiDer = createPublicKey(key).export({ format: "der", type: "spki" });
  const spki = new pkijs.PublicKeyInfo({ schema: parseDer(new Uint8Array(spkiDer)) });
  const ski = sha1(spki.subjectPublicKey.valueBlock.valueHexView);
  const serial = positiveSerial(randomBytes(16));
  const name = new pkijs.RelativeDistinguishedNames({
    typesAndValues: [new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: opts.commonName }) })],
  });
  const notAfter = new Date(now.getTime() + opts.validityDays * DAY_MS);
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: new asn1js.Integer({ valueHex: serial }),
    issuer: name,
    subject: name,
    notBefore: x509Time(new Date(now.getTime() - BACKDATE_MS)),
    notAfter: x509Time(notAfter),
    subjectPublicKeyInfo: spki,
    extensions: [
      extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(OID.keyUsage, true, keyUsage(0x06, 1)), // keyCertSign(5), cRLSign(6)
      extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: ski })),
      extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ski }) })),
    ],
  });
  return issued(finish(cert, key, signingAlgorithmFor(key)), serial, notAfter);
}

const VERSION_3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);

function oidDer(oid: string): Uint8Array {
  return new Uint8Array(new asn1js.ObjectIdentifier({ value: oid }).toBER(false));
}

/**
 * Issues leaf certificates for one CA. pkijs prepares every part that does not depend on the
 * node once (issuer name, algorithm identifier, constant extensions); each leaf is then spliced
 * together with the small DER writer and signed. See der.ts for why.
 */
export class LeafIssuer {
  private readonly alg: SigningAlgorithm;
  private readonly algDer: Uint8Array;
  private readonly issuerDer: Uint8Array;
  private readonly caNotAfter: Date;
  private readonly fixedExtensionsDer: Uint8Array;
  private readonly cnOid = oidDer(OID.commonName);
  private readonly skiOid = oidDer(OID.subjectKeyIdentifier);
  private readonly sanOid = oidDer(OID.subjectAltName);

  constructor(
    private readonly key: KeyObject,
    caCertDer: Uint8Array,
  ) {
    const ca = new pkijs.Certificate({ schema: parseDer(caCertDer) });
    this.alg = signingAlgorithmFor(key);
    this.algDer = new Uint8Array(this.alg.id.toSchema().toBER(false));
    // the CA's subject exactly as encoded in its certificate, so chain building matches bytes
    this.issuerDer = ca.subject.valueBeforeDecode?.byteLength ? new Uint8Array(ca.subject.valueBeforeDecode) : new Uint8Array(ca.subject.toSchema().toBER(false));
    this.caNotAfter = ca.notAfter.value;
    const skiExt = ca.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
    const caSki = skiExt ? (skiExt.parsedValue as asn1js.OctetString).valueBlock.valueHexView : sha1(ca.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
    const fixed = [
      extension(OID.basicConstraints, true, new asn1js.Sequence()),
      extension(OID.keyUsage, true, keyUsage(0xa0, 5)), // digitalSignature(0), keyEncipherment(2)
      extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] })),
      extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: caSki }) })),
    ];
    this.fixedExtensionsDer = concat(fixed.map((e) => new Uint8Array(e.toSchema().toBER(false))));
  }

  issue(csr: Pick<ParsedCsr, "spkiDer" | "subjectPublicKey">, identity: string, profile: CertificateProfile, at = new Date()): IssuedCertificate {
    if (!identity) throw new Error("identity is required");
    const days = profile.validityDays;
    if (!Number.isFinite(days) || days <= 0) throw new Error(`certificate validityDays must be a positive number, got ${days}`);
    // certificates carry whole seconds; report what the certificate says
    const now = Math.floor(at.getTime() / 1000) * 1000;
    let notAfter = new Date(now + Math.round(days * DAY_MS));
    // a leaf outliving its CA fails verification after the CA expires anyway; say so honestly
    if (notAfter > this.caNotAfter) notAfter = new Date(Math.floor(this.caNotAfter.getTime() / 1000) * 1000);
    const serial = positiveSerial(randomBytes(16));
    const ski = sha1(csr.subjectPublicKey);
    const notBefore = now - BACKDATE_MS;
    // the CN's check first: a bad identity is refused as a bad CN, not as a bad SAN
    const subjectCn = cn(identity);
    const sans = sanNames(identity, profile.sans ?? []);
    const tbs = tlv(
      TAG.sequence,
      VERSION_3,
      tlv(TAG.integer, serial),
      this.algDer,
      this.issuerDer,
      tlv(TAG.sequence, derTime(new Date(notBefore)), derTime(notAfter)),
      tlv(TAG.sequence, tlv(TAG.set, tlv(TAG.sequence, this.cnOid, tlv(TAG.utf8String, utf8(subjectCn))))),
      csr.spkiDer,
      tlv(
        TAG.context3,
        tlv(
          TAG.sequence,
          this.fixedExtensionsDer,
          tlv(TAG.sequence, this.skiOid, tlv(TAG.octetString, tlv(TAG.octetString, ski))),
          tlv(TAG.sequence, this.sanOid, tlv(TAG.octetString, tlv(TAG.sequence, ...sans.der))),
        ),
      ),
    );
    const der = tlv(TAG.sequence, tbs, this.algDer, tlv(TAG.bitString, Uint8Array.of(0), sign(this.alg.hash, tbs, this.key)));
    return issued(der, serial, notAfter, { notBefore, sans: sans.names });
  }
}

/** the CN: a valid DNS name or nothing is signed (csr-policy.ts checks first; this is the last gate) */
function cn(identity: string): string {
  if (!isDnsName(identity)) throw new CsrRefusedError("bad_name", `certificate CN ${JSON.stringify(identity)} is not a valid DNS name`);
  return identity;
}

function sanNames(identity: string, extra: string[]): { der: Uint8Array[]; names: string[] } {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const names: string[] = [];
  for (const raw of [identity, ...extra]) {
    const s = String(raw).trim();
    if (s === "") throw new Error("empty SAN in certificate profile");
    const k = s.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    if (isIpSan(s)) {
      const ip = ipBytes(s);
      out.push(tlv(TAG.ipAddress, ip));
      names.push(ipString(ip));
    } else if (isDnsName(s)) {
      out.push(tlv(TAG.dnsName, ascii(s)));
      names.push(s);
    } else throw new CsrRefusedError("bad_name", `SAN ${JSON.stringify(s)} is neither an IP address nor a valid DNS name`);
  }
  return { der: out, names };
}
