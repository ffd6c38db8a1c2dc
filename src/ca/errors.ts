/**
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

/** `initBuiltinCa` without `force` on a directory that already holds a CA */
export class CaExistsError extends Error {
  constructor(
    readonly dir: string,
    readonly file: string,
  ) {
    super(`a CA already exists in ${dir} (${file})`);
  }
}
