/**
 * The signing contract between the flow (provision/) and the CA (ca/): the request, the result,
 * the checked CSR handed from the checker to the signer, and the errors by which a signer says
 * how it failed, classified by class.
 */
import type { CertificateProfile } from "./decision.js";
import type { CsrSummary } from "./inventory.js";

/**
 * A CSR the CsrChecker parsed and verified, passed on so the signer need not parse it again.
 * Outside ca/ only these fields can be read; ca/ recognises its own parses (isOwnParse).
 */
export interface CheckedCsr {
  readonly pem: string;
  readonly summary: CsrSummary;
}

export interface SignRequest {
  identity: string;
  csrPem: string;
  /** validityDays and the SANs granted beyond the identity */
  profile: CertificateProfile;
  /**
   * The CsrChecker's parse of csrPem after the CSR policy passed it: signers use it instead of
   * parsing and verifying the CSR a second time, but only if it is ca/'s own parse of exactly
   * this PEM (isOwnParse); anything else is ignored.
   */
  checked?: CheckedCsr;
  /** the policy that decided this certificate ("name@version"), for the certificate ledger */
  policyVersion?: string;
}

export interface SignedCertificate {
  certificatePem: string;
  /** the chain sent to the node as configure.ca */
  caPem: string;
  /** lowercase hex */
  serial: string;
  /** sha256 of the certificate DER, lowercase hex */
  fingerprint: string;
  /** ISO-8601 */
  notAfter: string;
  /** set by a signer that built the certificate itself (the built-in CA): the ledger then need not parse it */
  leaf?: IssuedLeaf;
}

/** the fields of an issued leaf that the certificate ledger keeps besides serial and notAfter, as readCertificateDer gives them */
export interface IssuedLeaf {
  /** epoch ms */
  notBefore: number;
  /** DNS names as written, IP addresses as der/x509.ts' ipString formats them */
  sans: string[];
}

/**
 * Signs a checked CSR for a node. Throws CaUnavailableError when the CA cannot be reached (the
 * node is deferred and tried again), CsrRefusedError when the CSR is unacceptable (a refusal
 * with its code), CaRejectedError when the CA answered "no" otherwise.
 */
export interface Signer {
  readonly kind: string;
  sign(req: SignRequest): Promise<SignedCertificate>;
  /** a cheap request that resolves when the CA answers (CaUnavailableError when it does not), for the circuit breaker */
  probe?(): Promise<void>;
  close(): Promise<void>;
}

/*
 * The three ways signing can fail, kept apart because the daemon reacts differently:
 * unavailable → defer the node and retry later; refused → record a refusal with a code;
 * rejected → the CA answered "no" for a reason that retrying will not change.
 */
export type CsrRefusalCode =
  | "not_pem"
  | "too_large"
  | "bad_signature"
  | "cn_mismatch"
  | "denied_name"
  | "san_not_allowed"
  | "weak_key"
  | "unsupported_key"
  | "bad_name"
  | "malformed";

/** Every code, for metric label pre-registration and exhaustive tests. */
export const CSR_REFUSAL_CODES: readonly CsrRefusalCode[] = [
  "not_pem",
  "too_large",
  "bad_signature",
  "cn_mismatch",
  "denied_name",
  "san_not_allowed",
  "weak_key",
  "unsupported_key",
  "bad_name",
  "malformed",
];

/** The CA could not be reached or did not answer in time; the node should be retried later. */
export class CaUnavailableError extends Error {
  override name = "CaUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The CSR itself is unacceptable; `code` is a stable metric label, `message` is for humans. */
export class CsrRefusedError extends Error {
  override name = "CsrRefusedError";
  readonly code: CsrRefusalCode;
  constructor(code: CsrRefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The CA was reachable but refused or answered nonsense (bad profile, wrong key in the certificate, ...). */
export class CaRejectedError extends Error {
  override name = "CaRejectedError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
