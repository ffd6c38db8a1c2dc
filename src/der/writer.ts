/**
 * The one DER writer: definite minimal lengths, tag-length-value elements and the few typed
 * values both sides build. The built-in CA splices leaf certificates with it (asn1js re-encoding
 * the whole tree was most of the sign CPU: bench/README.md) and the simulator builds its nodes'
 * PKCS#10 requests with it (WebCrypto generators are async and several times slower).
 */

import { TAGS } from "./reader.js";

/** the universal tags the reader knows, and the context-specific ones certificates use */
export const TAG = {
  ...TAGS,
  context0: 0xa0,
  context3: 0xa3,
  dnsName: 0x82,
  ipAddress: 0x87,
} as const;

export function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = content.length === 1 ? content[0]! : concat(content);
  return concat([Uint8Array.of(tag), derLength(body.length), body]);
}

export const seq = (...c: Uint8Array[]): Uint8Array => tlv(TAG.sequence, ...c);
export const set = (...c: Uint8Array[]): Uint8Array => tlv(TAG.set, ...c);
export const NULL = Uint8Array.of(TAG.null, 0x00);

export function oid(dotted: string): Uint8Array {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(TAG.oid, Uint8Array.from(out));
}

/** An INTEGER from 0 to 127 (a version field). */
export function integerSmall(n: number): Uint8Array {
  return tlv(TAG.integer, Uint8Array.of(n));
}

/** A BIT STRING with no unused bits (signatures, keys). */
export function bitString(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.bitString, Uint8Array.of(0), bytes);
}

export function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

export function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "utf8"));
}

/** Go's asn1 picks PrintableString when every character allows it (it tolerates '*'), otherwise UTF8String. */
export function directoryString(s: string): Uint8Array {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(s);
  return tlv(printable ? TAG.printableString : TAG.utf8String, utf8(s));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always Zulu, whole seconds. */
export function derTime(d: Date): Uint8Array {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 2050) return tlv(TAG.generalizedTime, ascii(`${p(y, 4)}${rest}`));
  return tlv(TAG.utcTime, ascii(`${p(y % 100)}${rest}`));
}
