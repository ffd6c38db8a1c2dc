/**
 * A signer whose every certificate is in the ledger before the caller sees it: the flow sends
 * configure only after sign() resolves, so no node holds a certificate the ledger lacks. A ledger
 * that cannot write makes the sign fail as CaUnavailableError (the node is deferred and retried),
 * never a certificate handed out unrecorded. Under HA the rows go through the replica, which also
 * waits for the shared stream's ack: a certificate without it is not handed out either.
 */
import { createHash } from "node:crypto";
import { readCertificateDer } from "../der/x509.js";
import { CaUnavailableError, type SignRequest, type SignedCertificate, type Signer } from "../types/index.js";
import { normaliseSerial, type CertificateLedger, type LedgerEntry } from "./ledger.js";
import { ReplicationError } from "./ledger-replica.js";
import { decodePem } from "../der/pem.js";

/** what a ledger row says of the certificate itself */
export type CertificateFields = Pick<LedgerEntry, "serial" | "sans" | "notBefore" | "notAfter" | "fingerprint">;

/**
 * What a signer that built the certificate itself (the built-in CA) says is in it: this spares
 * the main thread a PEM decode, a DER parse and a hash per certificate. Undefined for any other.
 */
export function declaredFields(signed: SignedCertificate): CertificateFields | undefined {
  if (!signed.leaf) return undefined;
  return { serial: normaliseSerial(signed.serial), sans: signed.leaf.sans, notBefore: signed.leaf.notBefore, notAfter: Date.parse(signed.notAfter), fingerprint: signed.fingerprint };
}

/** the same, read from the certificate: the first certificate in the PEM is the leaf */
export function parsedFields(signed: SignedCertificate): CertificateFields {
  const leaf = decodePem(signed.certificatePem).find((b) => b.label === "CERTIFICATE");
  if (!leaf) throw new Error("the signer returned no certificate");
  const c = readCertificateDer(leaf.der);
  return { serial: normaliseSerial(c.serial), sans: c.sans, notBefore: c.notBefore, notAfter: c.notAfter, fingerprint: createHash("sha256").update(leaf.der).digest("hex") };
}

/** The ledger's view of what a signer returned. */
export function ledgerEntryFor(signed: SignedCertificate, o: { identity: string; signer: string; policyVersion?: string; at?: number }): LedgerEntry {
  return { ...(declaredFields(signed) ?? parsedFields(signed)), identity: o.identity, policyVersion: o.policyVersion ?? "", issuedAt: o.at ?? Date.now(), signer: o.signer };
}

/** where a signed certificate's row goes before the certificate is returned */
export interface LedgerRecorder {
  record(entry: LedgerEntry): Promise<void>;
}

export type LedgerSigner<S extends Signer> = S & {
  ledger: CertificateLedger;
  /** from now on rows go through `r` (the HA replica) instead of straight to the local ledger */
  recordThrough(r: LedgerRecorder): void;
};

export function withLedger<S extends Signer>(signer: S, ledger: CertificateLedger): LedgerSigner<S> {
  let recorder: LedgerRecorder = ledger;
  const sign = async (req: SignRequest): Promise<SignedCertificate> => {
    const signed = await signer.sign(req);
    let entry: LedgerEntry;
    try {
      entry = ledgerEntryFor(signed, { identity: req.identity, signer: signer.kind, policyVersion: req.policyVersion });
    } catch (e) {
      throw new CaUnavailableError(`the ${signer.kind} signer's certificate could not be read for the ledger: ${(e as Error).message}`);
    }
    try {
      await recorder.record(entry);
    } catch (e) {
      if (e instanceof ReplicationError) throw new CaUnavailableError(`certificate ${entry.serial} not in the shared ledger, so not sent: ${e.message}`);
      throw new CaUnavailableError(`certificate ${entry.serial} not recorded, so not sent: ${(e as Error).message}`);
    }
    return signed;
  };
  const close = async (): Promise<void> => {
    try {
      await signer.close();
    } finally {
      await ledger.close();
    }
  };
  // the signer's own extras (the built-in CA's stats, ...) stay reachable
  const recordThrough = (r: LedgerRecorder): void => {
    recorder = r;
  };
  return Object.assign(Object.create(signer) as S, { kind: signer.kind, sign, close, ledger, recordThrough });
}
