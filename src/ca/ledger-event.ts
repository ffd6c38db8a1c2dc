/**
 * The ledger's replication message: a batch of ledger rows as JSON, each the whole row every time
 * (an issue, or the same certificate revoked), so applying one needs nothing else and applying it
 * twice changes nothing. One message per batch, not per row: a JetStream publish with its ack
 * costs the client far more than the bytes of a row. Anyone who can publish on the broker can put
 * bytes in the stream, so reading checks every field and names the first that is wrong.
 */
import { createHash } from "node:crypto";
import { REVOCATION_REASONS, type LedgerEntry } from "./ledger.js";

/** the format's version; a reader skips (and counts) messages of a version it does not know */
export const LEDGER_EVENT_VERSION = 1;

const HEX = /^[0-9a-f]+$/;

export function encodeLedgerBatch(rows: LedgerEntry[]): Uint8Array {
  return Buffer.from(JSON.stringify({ v: LEDGER_EVENT_VERSION, rows }));
}

/**
 * A row's state: the serial for the issue, and the serial with the revocation time for a
 * revocation (two instances revoking one certificate at different times both reach the stream,
 * and the earliest wins everywhere).
 */
export function ledgerEventId(e: Pick<LedgerEntry, "serial" | "revokedAt">): string {
  return e.revokedAt === undefined ? e.serial : `${e.serial}.r${e.revokedAt}`;
}

/** the message id the stream de-duplicates on: the same rows in the same states sent again are stored once */
export function ledgerBatchId(rows: LedgerEntry[]): string {
  const h = createHash("sha256");
  for (const r of rows) h.update(ledgerEventId(r)).update(" ");
  return h.digest("hex").slice(0, 32);
}

export interface DecodedBatch {
  rows: LedgerEntry[];
  /** rows of the batch that are not ledger rows, by index, with the reason */
  invalid: Array<{ index: number; error: string }>;
}

/** a batch; throws LedgerEventError when the message as a whole is not one */
export function decodeLedgerBatch(data: Uint8Array): DecodedBatch {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch (e) {
    throw new LedgerEventError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new LedgerEventError("not a JSON object");
  const o = v as Record<string, unknown>;
  if (o.v !== LEDGER_EVENT_VERSION) throw new LedgerEventError(`version ${JSON.stringify(o.v)} is not ${LEDGER_EVENT_VERSION}`);
  if (!Array.isArray(o.rows)) throw new LedgerEventError("rows is not a list");
  const out: DecodedBatch = { rows: [], invalid: [] };
  o.rows.forEach((r: unknown, index) => {
    try {
      out.rows.push(ledgerRow(r));
    } catch (e) {
      out.invalid.push({ index, error: (e as Error).message });
    }
  });
  return out;
}

export class LedgerEventError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = "LedgerEventError";
  }
}

function ledgerRow(v: unknown): LedgerEntry {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new LedgerEventError("a row is not a JSON object");
  const o = v as Record<string, unknown>;
  const str = (k: string, re?: RegExp): string => {
    const x = o[k];
    if (typeof x !== "string" || (re && !re.test(x))) throw new LedgerEventError(`${k} ${JSON.stringify(x)} is not ${re ? "lowercase hex" : "a string"}`);
    return x;
  };
  const time = (k: string): number => {
    const x = o[k];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new LedgerEventError(`${k} ${JSON.stringify(x)} is not a time in ms`);
    return x;
  };
  const sans = o.sans;
  if (!Array.isArray(sans) || !sans.every((s) => typeof s === "string")) throw new LedgerEventError("sans is not a list of strings");
  const fingerprint = str("fingerprint", HEX);
  if (fingerprint.length !== 64) throw new LedgerEventError("fingerprint is not a SHA-256 in hex");
  const e: LedgerEntry = {
    serial: str("serial", HEX),
    identity: str("identity"),
    sans: sans as string[],
    notBefore: time("notBefore"),
    notAfter: time("notAfter"),
    fingerprint,
    policyVersion: str("policyVersion"),
    issuedAt: time("issuedAt"),
    signer: str("signer"),
  };
  if (e.identity === "") throw new LedgerEventError("identity is empty");
  if (o.revokedAt !== undefined) {
    e.revokedAt = time("revokedAt");
    const reason = o.revocationReason;
    if (!REVOCATION_REASONS.includes(reason as never)) throw new LedgerEventError(`revocationReason ${JSON.stringify(reason)} is not one of ${REVOCATION_REASONS.join(", ")}`);
    e.revocationReason = reason as string;
  }
  return e;
}
