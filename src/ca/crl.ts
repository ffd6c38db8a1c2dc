/**
 * The built-in CA's certificate revocation list (RFC 5280 §5): every revoked certificate not yet
 * expired, with its reason, signed with the CA key, with a nextUpdate. The issuer name is the CA
 * certificate's subject exactly as encoded, so OpenSSL and Go match it to the CA.
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { sign, type KeyObject } from "node:crypto";
import { extension, signingAlgorithmFor, x509Time } from "./issue.js";
import { REVOCATION_REASONS, type LedgerEntry } from "./ledger.js";
import { encodePem } from "../der/pem.js";
import { OID, parseDer } from "./x509-util.js";

const CRL_NUMBER = "2.5.29.20";
const REASON_CODE = "2.5.29.21";

/** RFC 5280 §5.3.1 CRLReason values of the reasons the CLI accepts */
const REASON_VALUE: Record<string, number> = { unspecified: 0, keyCompromise: 1, caCompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5 };
if (REVOCATION_REASONS.some((r) => REASON_VALUE[r] === undefined)) throw new Error("every revocation reason needs its CRLReason value");

export interface Crl {
  pem: string;
  der: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
  entries: number;
}

function integerFromHex(hex: string): asn1js.Integer {
  // a positive INTEGER: pad to whole bytes and keep the sign bit clear
  let h = hex.length % 2 ? `0${hex}` : hex;
  if (parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return new asn1js.Integer({ valueHex: new Uint8Array(Buffer.from(h, "hex")).buffer });
}

export function buildCrl(o: { key: KeyObject; caCertDer: Uint8Array; revoked: LedgerEntry[]; now?: Date; validityMs: number; number: bigint }): Crl {
  const ca = new pkijs.Certificate({ schema: parseDer(o.caCertDer) });
  const now = o.now ?? new Date();
  // whole seconds, as the CRL carries them
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + o.validityMs);
  const alg = signingAlgorithmFor(o.key);
  const skiExt = ca.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
  const crlExtensions = [extension(CRL_NUMBER, false, integerFromHex(o.number.toString(16)))];
  if (skiExt) {
    const ski = (skiExt.parsedValue as asn1js.OctetString).valueBlock.valueHexView;
    crlExtensions.unshift(extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ski }) })));
  }
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    issuer: ca.subject,
    thisUpdate: x509Time(thisUpdate),
    nextUpdate: x509Time(nextUpdate),
    crlExtensions: new pkijs.Extensions({ extensions: crlExtensions }),
  });
  // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked
  if (o.revoked.length > 0) {
    crl.revokedCertificates = o.revoked.map(
      (e) =>
        new pkijs.RevokedCertificate({
          userCertificate: integerFromHex(e.serial),
          revocationDate: x509Time(new Date(Math.floor(e.revokedAt! / 1000) * 1000)),
          crlEntryExtensions: new pkijs.Extensions({ extensions: [extension(REASON_CODE, false, new asn1js.Enumerated({ value: REASON_VALUE[e.revocationReason ?? "unspecified"] ?? 0 }))] }),
        }),
    );
  }
  crl.signature = alg.id;
  crl.signatureAlgorithm = alg.id;
  // pkijs signs only through WebCrypto; encodeTBS is protected but is exactly the bytes to sign
  const tbs = new Uint8Array((crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER(false));
  crl.tbsView = tbs;
  crl.signatureValue = new asn1js.BitString({ valueHex: sign(alg.hash, tbs, o.key) });
  const der = new Uint8Array(crl.toSchema(false).toBER(false));
  return { der, pem: encodePem("X509 CRL", der), thisUpdate, nextUpdate, number: o.number, entries: o.revoked.length };
}
