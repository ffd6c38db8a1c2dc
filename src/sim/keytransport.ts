/**
 * The server half of §7.4 private-key transport: `jwt` hands out a fresh X25519 public key,
 * `configure` may then deliver an RSA key encrypted the legacy-OpenSSL way with the shared secret.
 */
import { createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";

export function newEcdhPair(): { privateKey: KeyObject; publicHex: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const jwk = publicKey.export({ format: "jwk" });
  return { privateKey, publicHex: Buffer.from(String(jwk.x), "base64url").toString("hex") };
}

/** EVP_BytesToKey with MD5 and one iteration, as x509.DecryptPEMBlock derives AES keys */
function bytesToKey(password: Buffer, salt: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  let prev = Buffer.alloc(0);
  let total = 0;
  while (total < len) {
    prev = createHash("md5").update(Buffer.concat([prev, password, salt])).digest();
    out.push(prev);
    total += prev.length;
  }
  return Buffer.concat(out).subarray(0, len);
}

/** Returns the decrypted key or throws an Error whose message follows Go's (e.g. "private key not set"). */
export function decryptDeliveredKey(pemText: string, provisionerPublicHex: string, ecdhPrivate: KeyObject | undefined): KeyObject {
  if (!/^[0-9a-fA-F]{64}$/.test(provisionerPublicHex)) throw new Error("encoding/hex: invalid byte in ECDH public key");
  if (!ecdhPrivate) throw new Error("private key not set");
  const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(provisionerPublicHex, "hex").toString("base64url") }, format: "jwk" });
  const secret = diffieHellman({ privateKey: ecdhPrivate, publicKey: peer });
  const m = /-----BEGIN RSA PRIVATE KEY-----\r?\n([\s\S]*?)-----END RSA PRIVATE KEY-----/.exec(pemText);
  if (!m) throw new Error("bad key received");
  const [headerPart, ...rest] = m[1].split(/\r?\n\r?\n/);
  if (!/Proc-Type:\s*4,ENCRYPTED/.test(headerPart) || rest.length === 0) throw new Error("key is not encrypted");
  const dek = /DEK-Info:\s*AES-256-CBC,([0-9A-Fa-f]{32})/.exec(headerPart);
  if (!dek) throw new Error("x509: unknown encryption mode");
  const iv = Buffer.from(dek[1], "hex");
  const body = Buffer.from(rest.join("").replace(/\s+/g, ""), "base64");
  let der: Buffer;
  try {
    const d = createDecipheriv("aes-256-cbc", bytesToKey(secret, iv.subarray(0, 8), 32), iv);
    der = Buffer.concat([d.update(body), d.final()]);
  } catch {
    throw new Error("x509: decryption password incorrect");
  }
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs1" });
  } catch {
    throw new Error("x509: decryption password incorrect");
  }
}
