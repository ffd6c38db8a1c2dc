export { CaUnavailableError, CsrRefusedError, CaRejectedError, CSR_REFUSAL_CODES, type CsrRefusalCode } from "../types/index.js";
export { CaExistsError } from "./errors.js";
export { inspectCsr, isOwnParse, parseCsr, DEFAULT_MAX_CSR_BYTES, type ParsedCsr } from "./csr-inspect.js";
export { checkCsr, checkParsedCsr, DEFAULT_DENY_PATTERNS, type CsrPolicy, type CsrCheckResult } from "./csr-policy.js";
export type { SignRequest, SignedCertificate, Signer } from "../types/index.js";
export { initBuiltinCa, openBuiltinCa, assertPrivateKeyFile, CA_CERT_FILE, CA_KEY_FILE, type BuiltinCa, type InitCaOptions } from "./builtin-ca.js";
export { createCfsslSigner, type CfsslSignerOptions } from "./cfssl.js";
export { createExecSigner, type ExecSignerOptions } from "./exec-signer.js";
export { openSigner, csrChecker } from "./settings.js";
