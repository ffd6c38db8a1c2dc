/** Small ASN.1/X.509 helpers shared by CSR inspection and certificate issuing. */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { X509_OID } from "../der/x509.js";

// what src/der reads, plus what only issuing needs
export const OID = {
  ...X509_OID,
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  sha384WithRSA: "1.2.840.113549.1.1.12",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
} as const;

export function isIpSan(s: string): boolean {
  return isIP(s) !== 0;
}

export function ipBytes(s: string): Uint8Array {
  return new Uint8Array(ipaddr.parse(s).toByteArray());
}

/** Parses DER strictly: trailing bytes after the outer element mean the input is not what it claims. */
export function parseDer(der: Uint8Array): asn1js.AsnType {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) throw new Error(`invalid DER: ${parsed.result.error || "decode failed"}`);
  if (parsed.offset !== der.byteLength) throw new Error("trailing data after DER element");
  return parsed.result;
}

/** Turns 16 random bytes into a serial that is positive and minimally DER-encoded. */
export function positiveSerial(random: Uint8Array): Uint8Array {
  const s = new Uint8Array(random);
  // clear the sign bit and make the first byte non-zero so DER needs no padding byte and
  // every serial is exactly 16 bytes long
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}

export function toHex(b: Uint8Array | ArrayBuffer): string {
  return Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString("hex");
}
