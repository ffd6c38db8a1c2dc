/**
 * The DER writing both sides share: definite minimal lengths and tag-length-value elements. The
 * built-in CA splices leaf certificates with it (asn1js re-encoding the whole tree was ~60% of
 * sign CPU) and the simulator builds its nodes' CSRs with it.
 */

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
