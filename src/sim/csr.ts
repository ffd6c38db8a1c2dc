/**
 * PKCS#10 requests shaped like Go's x509.CreateCertificateRequest in choria_provision#gencsr:
 * subject RDNs in pkix.Name order (C, L, O, OU, CN), no attributes, SHA256WithRSA.
 */
import { sign, type KeyObject } from "node:crypto";
import { encodePem } from "../der/pem.js";
import { NULL, TAG, bitString, directoryString, integerSmall, oid, seq, set, tlv } from "../der/writer.js";

export interface CsrSubject {
  cn: string;
  C?: string;
  L?: string;
  O?: string;
  OU?: string;
}

const OID = { C: "2.5.4.6", L: "2.5.4.7", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3", sha256WithRSA: "1.2.840.113549.1.1.11" };

function rdn(type: string, value: string): Uint8Array {
  return set(seq(oid(type), directoryString(value)));
}

export function encodeSubject(s: CsrSubject): Uint8Array {
  const rdns: Uint8Array[] = [];
  if (s.C) rdns.push(rdn(OID.C, s.C));
  if (s.L) rdns.push(rdn(OID.L, s.L));
  if (s.O) rdns.push(rdn(OID.O, s.O));
  if (s.OU) rdns.push(rdn(OID.OU, s.OU));
  if (s.cn) rdns.push(rdn(OID.CN, s.cn));
  return seq(...rdns);
}

/** spkiDer: the key's SubjectPublicKeyInfo; privateKey signs. Returns the PEM text Go writes. */
export function createCsrPem(subject: CsrSubject, spkiDer: Buffer, privateKey: KeyObject): string {
  const info = seq(integerSmall(0), encodeSubject(subject), spkiDer, tlv(TAG.context0));
  return csrPem(info, sign("sha256", info, privateKey));
}

/**
 * createCsrPem with the RSA signature on libuv's thread pool: a fleet of thousands of nodes in
 * one process would otherwise make every node's signature wait for the others' on one thread,
 * where a real server signs on its own machine.
 */
export function createCsrPemAsync(subject: CsrSubject, spkiDer: Buffer, privateKey: KeyObject): Promise<string> {
  const info = seq(integerSmall(0), encodeSubject(subject), spkiDer, tlv(TAG.context0));
  return new Promise((resolve, reject) => sign("sha256", info, privateKey, (err, signature) => (err ? reject(err) : resolve(csrPem(info, signature)))));
}

function csrPem(info: Uint8Array, signature: Uint8Array): string {
  return encodePem("CERTIFICATE REQUEST", seq(info, seq(oid(OID.sha256WithRSA), NULL), bitString(signature)));
}
