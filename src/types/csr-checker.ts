import type { CsrSummary } from "./inventory.js";
import type { CheckedCsr } from "./signing.js";

/** `parsed` is the checker's own parse of the CSR, handed back to check() so it is parsed once */
export type CsrCheckResult = { ok: true; csr: CsrSummary; parsed?: CheckedCsr } | { ok: false; code: string; reason: string };

/** The CSR checks (ca/) as the flow (provision/) uses them. */
export interface CsrChecker {
  /** parse + self-signature; ok:false for non-PEM, oversize, malformed, bad signature */
  inspect(csrPem: string): CsrCheckResult;
  /** full policy: CN = identity, SANs allowed, deny list, key strength */
  check(csrPem: string, identity: string, allowedSans: string[], parsed?: CheckedCsr): CsrCheckResult;
}
