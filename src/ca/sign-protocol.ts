/** Messages between the sign pool and its worker threads. Plain data: structured-clone friendly. */
import type { CertificateProfile, CsrRefusalCode, IssuedLeaf } from "../types/index.js";

export interface SignWorkerData {
  /** PKCS#8 DER of the CA key; imported once per thread */
  caKeyDer: Uint8Array;
  caCertDer: Uint8Array;
}

export interface SignTask {
  id: number;
  identity: string;
  csrPem: string;
  profile: CertificateProfile;
  /** set when the main thread already parsed, verified and policy-checked the CSR */
  checked?: { spkiDer: Uint8Array; subjectPublicKey: Uint8Array };
}

export type SignTaskResult =
  | { id: number; ok: true; certificatePem: string; serial: string; fingerprint: string; notAfter: string; leaf?: IssuedLeaf; threadId: number; startedAt: number; endedAt: number }
  | { id: number; ok: false; error: { name: string; message: string; code?: CsrRefusalCode } };

export type ToWorker = { type: "sign"; tasks: SignTask[] } | { type: "stop" };
export type FromWorker = { type: "ready"; threadId: number } | { type: "done"; results: SignTaskResult[] };
