/**
 * Ids and clocks of protocol v2 (§3): request ids are KSUIDs (segment.io format: 4 bytes of
 * big-endian seconds since 1400000000 + 16 random bytes, base62, 27 characters) and times are
 * Unix nanoseconds. src/credentials uses this generator for token ids as well.
 */
import { randomBytes } from "node:crypto";

export const KSUID_EPOCH_SECONDS = 1_400_000_000;
export const KSUID_LENGTH = 27;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** The 27-character base62 form of a raw 20-byte KSUID. */
export function encodeKsuid(raw: Uint8Array): string {
  if (raw.length !== 20) throw new RangeError("a KSUID is 20 bytes");
  let n = BigInt(`0x${Buffer.from(raw).toString("hex")}`);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(KSUID_LENGTH, "0");
}

export function newKsuidV2(nowMs: number = Date.now()): string {
  const secs = Math.floor(nowMs / 1000) - KSUID_EPOCH_SECONDS;
  if (secs < 0 || secs > 0xffffffff) throw new RangeError(`time ${nowMs} is outside the KSUID range`);
  const raw = Buffer.alloc(20);
  raw.writeUInt32BE(secs, 0);
  randomBytes(16).copy(raw, 4);
  return encodeKsuid(raw);
}

/** A v2 request id. */
export function newRequestIdV2(): string {
  return newKsuidV2();
}

/** Seconds since the Unix epoch embedded in a KSUID, or undefined if s is not one. */
export function ksuidSeconds(s: string): number | undefined {
  if (!/^[0-9A-Za-z]{27}$/.test(s)) return undefined;
  let n = 0n;
  for (const c of s) n = n * 62n + BigInt(ALPHABET.indexOf(c));
  if (n >> 160n !== 0n) return undefined;
  return Number(n >> 128n) + KSUID_EPOCH_SECONDS;
}

/**
 * Unix nanoseconds as a JS number. Values around 1.7e18 are past 2^53, so they carry ~256 ns of
 * rounding: harmless for TTL windows (seconds), and JSON.stringify still writes a plain integer
 * Go's int64 accepts. Decoding Go's exact nanoseconds rounds the same way.
 */
export function unixNanos(nowMs: number = Date.now()): number {
  return Math.floor(nowMs) * 1_000_000;
}

/** The v2 "insecure" request signature: the bytes of "insecure", base64 on the wire. */
export const INSECURE_SIGNATURE_V2 = Buffer.from("insecure").toString("base64");
