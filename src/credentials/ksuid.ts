/**
 * KSUIDs (segment.io format) as Choria uses them for token ids (`jti`) and v2 nonces. The
 * generator lives in src/protocol/v2-ids.ts (v2 request ids are KSUIDs too); credentials may
 * use the pure protocol module, so there is one implementation. The token `jti` must embed the
 * token's `iat`: the Go tokens package refuses chained tokens whose id time differs from iat.
 */
import { KSUID_EPOCH_SECONDS, encodeKsuid, ksuidSeconds, newKsuidV2 } from "../protocol/v2-ids.js";

export const KSUID_EPOCH = KSUID_EPOCH_SECONDS;

export function newKsuid(at: Date = new Date()): string {
  return newKsuidV2(at.getTime());
}

/** The 27-character base62 form of a raw 20-byte KSUID. */
export const ksuidFromBytes = encodeKsuid;

/** Returns the embedded time, or undefined if s is not a KSUID. */
export function ksuidTime(s: string): Date | undefined {
  const secs = ksuidSeconds(s);
  return secs === undefined ? undefined : new Date(secs * 1000);
}
