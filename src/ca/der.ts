/**
 * What the per-certificate hot path writes beyond src/der's TLVs: tags, times, strings. pkijs
 * prepares every constant part once (issuer name, algorithm identifiers, fixed extensions); per
 * leaf we only splice bytes.
 */

import { tlv } from "../der/writer.js";

export { concat, derLength, tlv } from "../der/writer.js";

export const TAG = {
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  context0: 0xa0,
  context3: 0xa3,
  dnsName: 0x82,
  ipAddress: 0x87,
} as const;

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always Zulu, whole seconds. */
export function derTime(d: Date): Uint8Array {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 2050) return tlv(TAG.generalizedTime, ascii(`${p(y, 4)}${rest}`));
  return tlv(TAG.utcTime, ascii(`${p(y % 100)}${rest}`));
}

export function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

export function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "utf8"));
}
