/**
 * Typed failures of the credentials module. Each carries a code so the daemon can count it in
 * a metric label and put it in a decision record, and a reason a human can act on. No error
 * message ever contains key material or the provisioning token.
 */

export type JwtVerifyErrorCode =
  | "malformed"
  | "bad_signature"
  | "unsupported_alg"
  | "not_provisioning"
  | "expired"
  | "not_yet_valid"
  | "chain_expired";

export class JwtVerifyError extends Error {
  readonly code: JwtVerifyErrorCode;
  readonly reason: string;
  constructor(code: JwtVerifyErrorCode, reason: string) {
    super(`provisioning JWT rejected (${code}): ${reason}`);
    this.name = "JwtVerifyError";
    this.code = code;
    this.reason = reason;
  }
}

/** A configured key or token (jwt_verify_cert, jwt_signing_key, jwt_signing_token) is unusable. */
export class CredentialConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialConfigError";
  }
}

export type KeyTransportErrorCode = "bad_public_key" | "bad_private_key" | "bad_input_key" | "not_encrypted" | "bad_format" | "decrypt_failed";

export class KeyTransportError extends Error {
  readonly code: KeyTransportErrorCode;
  constructor(code: KeyTransportErrorCode, message: string) {
    super(message);
    this.name = "KeyTransportError";
    this.code = code;
  }
}

/** The inputs for a server JWT (identity, gen25519 key, helper server_claims) are unusable. */
export class ServerJwtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServerJwtError";
  }
}
