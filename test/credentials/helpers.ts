/** Key and token makers for credentials tests; tokens are signed with node:crypto directly. */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";

export function b64url(v: unknown): string {
  return Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
}

/** Signs arbitrary header/claims so tests do not depend on the code under test to make tokens. */
export function makeJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const alg = String(header.alg);
  const digest = alg === "EdDSA" ? null : `sha${alg.slice(2)}`;
  return `${input}.${sign(digest, Buffer.from(input), key).toString("base64url")}`;
}

export function rsaPair() {
  return generateKeyPairSync("rsa", { modulusLength: 2048 });
}

export function edPair() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pubHex = Buffer.from(String(publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
  const seedHex = Buffer.from(String(privateKey.export({ format: "jwk" }).d), "base64url").toString("hex");
  return { publicKey, privateKey, pubHex, seedHex };
}

export function decodePart(token: string, i: 0 | 1): Record<string, any> {
  return JSON.parse(Buffer.from(token.split(".")[i]!, "base64url").toString());
}

export const nowS = () => Math.floor(Date.now() / 1000);
