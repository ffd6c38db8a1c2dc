/**
 * The CSR policy: what a node may ask for. Runs before any signer sees the CSR, so a remote
 * CA never receives something we would refuse, and every refusal carries a metric label.
 */
import { CsrRefusedError, isDnsName, type CsrSummary, type CsrRefusalCode } from "../types/index.js";
import { isIpSan } from "./x509-util.js";
import { parseCsr, type ParsedCsr } from "./csr-inspect.js";

export interface CsrPolicy {
  /** the node's identity; the CSR's CN must equal it */
  identity: string;
  /** extra SANs the policy grants beyond the identity */
  allowedSans?: string[];
  /** names refused in CN and SANs; replaces DEFAULT_DENY_PATTERNS when given */
  denyPatterns?: RegExp[];
  /** PEM size limit in bytes (default 16 KiB) */
  maxBytes?: number;
}

export type CsrCheckResult = { ok: true; csr: CsrSummary } | { ok: false; code: CsrRefusalCode; reason: string };

/**
 * Choria client certificates (users and privileged users) end in these names; a server that
 * obtained one could impersonate an operator, so no node may ever get such a certificate.
 * Case-insensitive because DNS names are.
 */
export const DEFAULT_DENY_PATTERNS: readonly RegExp[] = [
  /\.privileged\.mcollective$/i,
  /\.privileged\.choria$/i,
  /\.mcollective$/i,
  /\.choria$/i,
];

export const RSA_MIN_BITS = 2048;
// Bigger keys add nothing a Choria node needs and make verification a CPU sink.
export const RSA_MAX_BITS = 8192;
const ALLOWED_CURVES = new Set(["P-256", "P-384"]);

export function checkCsr(csrPem: string, policy: CsrPolicy): CsrCheckResult {
  try {
    return { ok: true, csr: enforce(csrPem, policy) };
  } catch (e) {
    if (e instanceof CsrRefusedError) return { ok: false, code: e.code, reason: e.message };
    // anything else is a bug in parsing code; refusing is still the safe answer
    return { ok: false, code: "malformed", reason: `CSR could not be processed: ${(e as Error)?.message ?? String(e)}` };
  }
}

/** checkCsr for a CSR the caller already parsed and verified with parseCsr (no second parse). */
export function checkParsedCsr(parsed: ParsedCsr, policy: CsrPolicy): CsrCheckResult {
  try {
    return { ok: true, csr: enforceParsed(parsed, policy) };
  } catch (e) {
    if (e instanceof CsrRefusedError) return { ok: false, code: e.code, reason: e.message };
    return { ok: false, code: "malformed", reason: `CSR could not be processed: ${(e as Error)?.message ?? String(e)}` };
  }
}

function enforce(csrPem: string, policy: CsrPolicy): CsrSummary {
  return enforceParsed(parseCsr(csrPem, { maxBytes: policy.maxBytes }), policy);
}

function enforceParsed(parsed: ParsedCsr, policy: CsrPolicy): CsrSummary {
  const csr = parsed.summary;
  assertKeyAcceptable(csr);

  const names = [...parsed.cns, ...csr.sans];
  assertValidNames(parsed.cns, [...csr.sans, ...(policy.allowedSans ?? [])]);
  const deny = policy.denyPatterns ?? DEFAULT_DENY_PATTERNS;
  for (const name of names) {
    const hit = deny.find((re) => matches(re, name));
    if (hit) throw new CsrRefusedError("denied_name", `CSR name "${name}" matches the deny pattern ${hit}`);
  }

  if (parsed.cns.length !== 1) throw new CsrRefusedError("cn_mismatch", `CSR subject must hold exactly one CN, found ${parsed.cns.length}`);
  if (csr.cn !== policy.identity) throw new CsrRefusedError("cn_mismatch", `CSR CN "${csr.cn}" does not match the node identity "${policy.identity}"`);

  const allowed = new Set([policy.identity, ...(policy.allowedSans ?? [])].map(normaliseName));
  for (const san of csr.sans) {
    if (!allowed.has(normaliseName(san))) throw new CsrRefusedError("san_not_allowed", `CSR requests SAN "${san}", which the policy does not grant`);
  }
  return csr;
}

/**
 * Never sign a name that is not a DNS name (or an IP address SAN), whatever intake let through:
 * a CN such as `$(touch${IFS}/tmp/pwned)` ends up in file names, helpers' arguments and logs.
 */
export function assertValidNames(cns: readonly string[], sans: readonly string[]): void {
  for (const cn of cns) if (!isDnsName(cn)) throw new CsrRefusedError("bad_name", `CSR CN ${JSON.stringify(cn)} is not a valid DNS name`);
  for (const san of sans) if (!isIpSan(san) && !isDnsName(san)) throw new CsrRefusedError("bad_name", `SAN ${JSON.stringify(san)} is neither an IP address nor a valid DNS name`);
}

/** Key strength rule alone, for signers that re-check a CSR the daemon already vetted. */
export function assertKeyAcceptable(csr: CsrSummary): void {
  switch (csr.keyType) {
    case "rsa":
      if (csr.keyBits < RSA_MIN_BITS) throw new CsrRefusedError("weak_key", `RSA key of ${csr.keyBits} bits is below the minimum of ${RSA_MIN_BITS}`);
      if (csr.keyBits > RSA_MAX_BITS) throw new CsrRefusedError("unsupported_key", `RSA key of ${csr.keyBits} bits exceeds the maximum of ${RSA_MAX_BITS}`);
      return;
    case "ecdsa":
      if (!ALLOWED_CURVES.has(csr.curve ?? "")) throw new CsrRefusedError("unsupported_key", `ECDSA curve ${csr.curve ?? "unknown"} is not accepted (P-256 or P-384)`);
      return;
    case "ed25519":
      return;
    default:
      throw new CsrRefusedError("unsupported_key", "CSR public key algorithm is not supported (RSA >= 2048, ECDSA P-256/P-384, Ed25519)");
  }
}

// Operator-supplied patterns may not carry the i flag, so test the name as sent and lower-cased.
function matches(re: RegExp, name: string): boolean {
  re.lastIndex = 0;
  if (re.test(name)) return true;
  re.lastIndex = 0;
  return re.test(name.toLowerCase());
}

function normaliseName(s: string): string {
  return s.trim().toLowerCase().replace(/\.$/, "");
}
