export { CaUnavailableError, CsrRefusedError, CaRejectedError, CSR_REFUSAL_CODES, type CsrRefusalCode } from "./errors.js";
export { inspectCsr, DEFAULT_MAX_CSR_BYTES } from "./csr-inspect.js";
export { checkCsr, DEFAULT_DENY_PATTERNS, type CsrPolicy, type CsrCheckResult } from "./csr-policy.js";
