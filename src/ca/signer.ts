import type { CertificateProfile } from "../types/index.js";

export interface SignRequest {
  identity: string;
  csrPem: string;
  /** validityDays and the SANs granted beyond the identity */
  profile: CertificateProfile;
  /**
   * The caller's parseCsr of csrPem after the CSR policy passed it: signers use it instead of
   * parsing and verifying the CSR a second time, but only if it is parseCsr's own parse of
   * exactly this PEM (isOwnParse); anything else is ignored.
   */
  checked?: unknown;
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
}

export interface Signer {
  readonly kind: string;
  sign(req: SignRequest): Promise<SignedCertificate>;
  close(): Promise<void>;
}
