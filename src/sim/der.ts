/**
 * The few DER constructs a PKCS#10 request needs. Hand-built because the CSR is on the hot
 * path of a 100k-node fleet and the WebCrypto-based generators are async and several times slower.
 */
import { tlv as derTlv } from "../der/writer.js";

// Buffers out, as the rest of the simulator expects; the encoding itself is src/der's.
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const t = derTlv(tag, ...content);
  return Buffer.from(t.buffer, t.byteOffset, t.byteLength);
}

export const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
export const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);

export function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** Go's asn1 picks PrintableString when every character allows it (it tolerates '*'), otherwise UTF8String. */
export function directoryString(s: string): Buffer {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(s);
  return tlv(printable ? 0x13 : 0x0c, Buffer.from(s, "utf8"));
}

export const NULL = Buffer.from([0x05, 0x00]);

export function integerSmall(n: number): Buffer {
  return tlv(0x02, Buffer.from([n]));
}

export function bitString(bytes: Buffer): Buffer {
  return tlv(0x03, Buffer.from([0]), bytes);
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
