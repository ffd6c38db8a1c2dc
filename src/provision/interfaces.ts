/**
 * What the orchestrator needs from the other parts, as interfaces, so the per-node flow is
 * testable with the real parts wired in by daemon/ and nothing here depends on how they work.
 */
import type { RpcReplyBody } from "../protocol/index.js";
import type { CertificateProfile, Decision, Inventory, PolicyRef } from "../types/index.js";

export interface RpcCaller {
  call<T = Record<string, unknown>>(identity: string, agent: string, action: string, data?: Record<string, unknown>, o?: { timeoutMs?: number; signal?: AbortSignal }): Promise<RpcReplyBody<T>>;
}

/** One loaded, validated policy version. evaluate never throws for bad inventory data. */
export interface PolicyVersion {
  ref: PolicyRef;
  evaluate(inv: Inventory, o?: { explain?: boolean }): Promise<Decision>;
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

/** Thrown by signers when the CA cannot be reached; the node is deferred, never half-configured. */
export function isCaUnavailable(e: unknown): boolean {
  return e instanceof Error && (e.name === "CaUnavailableError" || (e as { code?: string }).code === "ca_unavailable");
}
