/** Facts about a certificate that came back from a signer, read with node:crypto's X509 parser. */
import { X509Certificate, createHash } from "node:crypto";
import { CaRejectedError, type SignedCertificate } from "../types/index.js";
import { decodePem } from "../der/pem.js";

export interface CertFacts {
  serial: string;
  fingerprint: string;
  notAfter: string;
  spkiDer: Buffer;
}

export function certFacts(pem: string): CertFacts {
  const blocks = decodePem(pem);
  if (blocks.length !== 1 || blocks[0]!.label !== "CERTIFICATE") throw new Error("expected exactly one CERTIFICATE");
  const der = blocks[0]!.der;
  const x = new X509Certificate(der);
  return {
    // node prints serials upper-case without leading zero bytes; we report lowercase hex
    serial: x.serialNumber.toLowerCase(),
    fingerprint: createHash("sha256").update(der).digest("hex"),
    notAfter: new Date(x.validTo).toISOString(),
    spkiDer: x.publicKey.export({ format: "der", type: "spki" }),
  };
}

/**
 * A remote CA is trusted to sign, not to be right: the certificate must carry the node's own
 * key (else the node could not use it) and the identity (else the node would be misnamed).
 */
export function acceptRemoteCertificate(certificatePem: string, caPem: string, csrSpkiDer: Uint8Array, identity: string, source: string): SignedCertificate {
  let facts: CertFacts;
  let x: X509Certificate;
  try {
    facts = certFacts(certificatePem);
    x = new X509Certificate(certificatePem);
  } catch (e) {
    throw new CaRejectedError(`${source} returned an unreadable certificate: ${(e as Error).message}`);
  }
  if (!facts.spkiDer.equals(Buffer.from(csrSpkiDer))) throw new CaRejectedError(`${source} returned a certificate for a different public key than the CSR's`);
  if (x.checkHost(identity, { subject: "default" }) === undefined && !subjectHasCn(x.subject, identity)) {
    throw new CaRejectedError(`${source} returned a certificate that does not name ${identity}`);
  }
  return { certificatePem: certificatePem.endsWith("\n") ? certificatePem : certificatePem + "\n", caPem, serial: facts.serial, fingerprint: facts.fingerprint, notAfter: facts.notAfter };
}

function subjectHasCn(subject: string, identity: string): boolean {
  return subject.split("\n").some((l) => l === `CN=${identity}`);
}
