/**
 * What the orchestrator needs from the other parts, as interfaces, so the per-node flow is
 * testable with the real parts wired in by cli/ and nothing here depends on how they work.
 */
import type { RpcReplyBody } from "../protocol/index.js";
import type { CertificateProfile, CsrSummary, Decision, Inventory, PolicyRef } from "../types/index.js";

export interface RpcCaller {
  call<T = Record<string, unknown>>(identity: string, agent: string, action: string, data?: Record<string, unknown>, o?: { timeoutMs?: number; signal?: AbortSignal }): Promise<RpcReplyBody<T>>;
}

/** One loaded, validated policy version. evaluate never throws for bad inventory data. */
export interface PolicyVersion {
  ref: PolicyRef;
  evaluate(inv: Inventory, o?: { explain?: boolean }): Promise<Decision>;
}

/** Extra input some deciders need beyond the Inventory (the legacy helper wants raw data). */
export interface DecisionContext {
  inventory: Inventory;
  rawInventory: Record<string, unknown>;
  csr?: { csr: string; public_key: string; ssldir: string };
  /** the full verified provisioning JWT claims, secrets included: the legacy helper gets them as the reference passes them */
  jwtClaims?: Record<string, unknown>;
  /** the gen25519 reply (public_key, directory, signature) when features.ed25519 is on */
  ed25519?: { public_key: string; directory: string; signature: string };
}

export interface Decider {
  readonly ref: PolicyRef;
  decide(ctx: DecisionContext): Promise<Decision>;
}

export interface SignRequestLike {
  identity: string;
  csrPem: string;
  profile: CertificateProfile;
  /** the CsrChecker's parse of csrPem after check() passed it; a signer that made it may skip its own */
  checked?: unknown;
}

export interface SignedCertificateLike {
  certificatePem: string;
  caPem: string;
  serial: string;
  fingerprint: string;
  notAfter: string;
}

export interface SignerLike {
  readonly kind: string;
  sign(req: SignRequestLike): Promise<SignedCertificateLike>;
}

/** `parsed` is the checker's own parse of the CSR, handed back to check() so it is parsed once */
export type CsrCheckResult = { ok: true; csr: CsrSummary; parsed?: unknown } | { ok: false; code: string; reason: string };

export interface CsrChecker {
  /** parse + self-signature; ok:false for non-PEM, oversize, malformed, bad signature */
  inspect(csrPem: string): CsrCheckResult;
  /** full policy: CN = identity, SANs allowed, deny list, key strength */
  check(csrPem: string, identity: string, allowedSans: string[], parsed?: unknown): CsrCheckResult;
}

/** Thrown by signers when the CA cannot be reached; the node is deferred, never half-configured. */
export function isCaUnavailable(e: unknown): boolean {
  return e instanceof Error && (e.name === "CaUnavailableError" || (e as { code?: string }).code === "ca_unavailable");
}
