/**
 * KSUIDs (segment.io format) as Choria uses them for token ids (`jti`) and v2 nonces: 4 bytes of
 * big-endian seconds since 2014-05-13 (epoch 1400000000) + 16 random bytes, base62 (0-9A-Za-z),
 * left-padded to 27 characters. The token `jti` must embed the token's `iat`: the Go tokens
 * package refuses chained tokens whose id time differs from iat.
 *
 * src/protocol/v2-ids.ts has the same small generator: src/credentials may not import the
 * protocol module and vice versa, and 40 lines are cheaper than a shared-module exception.
 */
import { randomBytes } from "node:crypto";

export const KSUID_EPOCH = 1_400_000_000;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KSUID_RE = /^[0-9A-Za-z]{27}$/;
const MAX = (1n << 160n) - 1n;

export function newKsuid(at: Date = new Date()): string {
  const secs = Math.floor(at.getTime() / 1000) - KSUID_EPOCH;
  if (secs < 0 || secs > 0xffffffff) throw new RangeError(`time ${at.toISOString()} is outside the KSUID range`);
  const buf = Buffer.alloc(20);
  buf.writeUInt32BE(secs, 0);
  randomBytes(16).copy(buf, 4);
  return ksuidFromBytes(buf);
}

/** The 27-character base62 form of a raw 20-byte KSUID. */
export function ksuidFromBytes(raw: Uint8Array): string {
  if (raw.length !== 20) throw new RangeError("a KSUID is 20 bytes");
  let n = BigInt(`0x${Buffer.from(raw).toString("hex")}`);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(27, "0");
}

/** Returns the embedded time, or undefined if s is not a KSUID. */
export function ksuidTime(s: string): Date | undefined {
  if (!KSUID_RE.test(s)) return undefined;
  let n = 0n;
  for (const c of s) n = n * 62n + BigInt(ALPHABET.indexOf(c));
  if (n > MAX) return undefined;
  const secs = Number(n >> 128n);
  return new Date((secs + KSUID_EPOCH) * 1000);
}
