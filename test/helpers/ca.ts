import "reflect-metadata";
/**
 * The tests' two CAs, in one home: a built-in CA directory the daemon signs with
 * (`makeBuiltinCa`), and a throwaway CA held in memory that signs what a test hands it
 * (`makeTestCa`, with `signCsr` in test/sim/helpers.ts), for nodes and servers the daemon's CA
 * did not sign.
 */
import { mkdtempSync } from "node:fs";
import { webcrypto } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { initBuiltinCa } from "../../src/ca/index.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;

/** A directory made by `ca init`. */
export async function makeBuiltinCa(key: "ecdsa" | "rsa" = "ecdsa"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "cp-ca-"));
  await initBuiltinCa(dir, { key });
  return dir;
}

export interface TestCa {
  cert: x509.X509Certificate;
  pem: string;
  keys: webcrypto.CryptoKeyPair;
}

export async function makeTestCa(name = "CN=Sim Test CA"): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: RSA,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, pem: cert.toString("pem"), keys };
}
