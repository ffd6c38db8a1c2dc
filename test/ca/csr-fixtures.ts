import "reflect-metadata";
/** Real CSRs for tests and benchmarks, built the way Choria's gencsr builds them (RSA-2048, SHA256WithRSA). */
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;

export type KeySpec = { kind: "rsa"; bits: number } | { kind: "ec"; curve: "P-256" | "P-384" | "P-521" } | { kind: "ed25519" };

const RSA_ALG = (bits: number) => ({ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: bits });

export async function generateKeys(spec: KeySpec): Promise<{ keys: CryptoKeyPair; alg: Algorithm & Record<string, unknown> }> {
  if (spec.kind === "rsa") {
    const alg = RSA_ALG(spec.bits);
    return { keys: (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair, alg };
  }
  if (spec.kind === "ec") {
    const alg = { name: "ECDSA", namedCurve: spec.curve, hash: spec.curve === "P-256" ? "SHA-256" : "SHA-384" };
    return { keys: (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair, alg };
  }
  const alg = { name: "Ed25519" };
  return { keys: (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair, alg };
}

export interface CsrOptions {
  cn?: string | string[];
  /** extra subject attributes like gencsr's C, L, O, OU */
  subject?: Record<string, string>;
  dns?: string[];
  ips?: string[];
  key?: KeySpec;
  keys?: { keys: CryptoKeyPair; alg: Algorithm & Record<string, unknown> };
}

export async function makeCsr(opts: CsrOptions = {}): Promise<string> {
  const k = opts.keys ?? (await generateKeys(opts.key ?? { kind: "rsa", bits: 2048 }));
  const parts: string[] = [];
  for (const [t, v] of Object.entries(opts.subject ?? {})) parts.push(`${t}=${v}`);
  const cns = opts.cn === undefined ? ["node1.example.net"] : Array.isArray(opts.cn) ? opts.cn : [opts.cn];
  for (const cn of cns) parts.push(`CN=${cn}`);
  const extensions: x509.Extension[] = [];
  const names: x509.JsonGeneralName[] = [...(opts.dns ?? []).map((v) => ({ type: "dns" as const, value: v })), ...(opts.ips ?? []).map((v) => ({ type: "ip" as const, value: v }))];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: parts.join(", "),
    keys: k.keys,
    signingAlgorithm: k.alg,
    extensions,
  });
  return csr.toString("pem");
}

/** Re-encodes a PEM after letting `mutate` change its DER, for tampering tests. */
export function tamperPem(pem: string, mutate: (der: Buffer) => void): string {
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(pem)![1]!;
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(body, "base64");
  mutate(der);
  const b64 = der.toString("base64").match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
