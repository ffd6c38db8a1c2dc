import { createHash, randomUUID } from "node:crypto";

/** 32 lowercase hex chars: a UUIDv4 without dashes, as Go's client makes them (a dashed id is rejected). */
export function newRequestId(): string {
  return randomUUID().replace(/-/g, "");
}

/** UUIDv4 with dashes, as lifecycle events carry. */
export function newEventId(): string {
  return randomUUID();
}

export function md5hex(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

/** base64(sha256(bytes of s)): the v1 secure reply hash. */
export function replyHash(message: string): string {
  return createHash("sha256").update(message, "utf8").digest("base64");
}

export function unixSeconds(now: number = Date.now()): number {
  return Math.floor(now / 1000);
}
