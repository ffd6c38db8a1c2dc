/**
 * Certificate renewal (arrival/renewal.ts): the daemon asks a node whose certificate is about to
 * expire to go back to provisioning (`choria_provision#reprovision` at its home), and the normal
 * intake provisions it again with a new certificate. The certificate ledger (ca/) says which
 * nodes are due through `RenewalSource`; each step is audited as a `RenewRecord`.
 */

/** A node's latest certificate, as the ledger holds it. */
export interface DueCertificate {
  identity: string;
  serial: string;
  fingerprint: string;
  /** epoch ms */
  notAfter: number;
  issuedAt: number;
}

export interface RenewalQuery {
  /** epoch ms: certificates already expired are not due (the node cannot reach its home any more) */
  now: number;
  /** ms: certificates that expire within this long of `now` are due, if they were issued before it began */
  windowMs: number;
  /**
   * epoch ms: look no earlier than this notAfter. The caller's cursor: everything before it was
   * seen already and is replaced, revoked or being renewed
   */
  from?: number;
  limit: number;
}

/**
 * Which nodes are due for renewal: those whose latest certificate is not revoked and expires
 * within the window, soonest first. A certificate issued inside the window (validity not longer
 * than the window) is never due: its successor would be due as soon as it was issued. Read from the ledger on every pass, so the due set survives a
 * restart of the daemon.
 */
export interface RenewalSource {
  renewalsDue(q: RenewalQuery): DueCertificate[];
}

/**
 * requested: the node accepted `reprovision` and is going back to provisioning;
 * renewed: it was provisioned again and holds a new certificate;
 * failed: it refused (wrong token, not authorised), was not reachable at any home, or was not
 * provisioned again within `renewal.retry_after`.
 */
export type RenewResult = "requested" | "renewed" | "failed";

/** why a renewal failed: a metric label, so a short fixed set */
export type RenewFailure = "refused" | "unreachable" | "timeout" | "not_reprovisioned" | "error";

/** The audit's record of one renewal step. Never holds the provisioning token. */
export interface RenewRecord {
  kind: "renew";
  identity: string;
  /** ISO-8601 */
  time: string;
  result: RenewResult;
  /** the certificate being renewed */
  serial: string;
  /** ISO-8601 notAfter of that certificate */
  notAfter: string;
  /** ISO-8601: when the node was asked (the token bucket's time) */
  askedAt: string;
  /** the home that carried the request */
  home?: string;
  /** failed: why (a RenewFailure) */
  failure?: RenewFailure;
  /** the node's status message, or what went wrong */
  message?: string;
  /** renewed: the new certificate's serial, and ms from the request */
  newSerial?: string;
  afterMs?: number;
}
