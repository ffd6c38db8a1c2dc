/** Loading the configured credentials (features.jwt / ed25519, protocol 2's client JWT), checked before anything starts. */
import { readFileSync, statSync } from "node:fs";
import { assertPrivateKeyFile } from "../ca/file-trust.js";
import { credentialProblems, type Settings } from "../config/index.js";
import { parseSigningKey, signServerJwt } from "./ed25519.js";
import { loadJwtVerifier, type JwtVerifier } from "./provisioning-jwt.js";

/** The credentials part of the per-node flow's options. */
export interface CredentialOptions {
  /**
   * features.jwt: ask every node for its provisioning JWT first and verify it. verifier() is
   * called per node so a rotated jwt_verify_cert can take effect without a restart; it throws
   * CredentialConfigError when the configured key is unusable.
   */
  jwt?: { verifier: () => JwtVerifier };
  /** features.ed25519 (needs jwt): gen25519 with a nonce, then a server JWT signed with signingKey */
  ed25519?: {
    /** jwt_signing_key contents: hex ed25519 seed or PEM private key */
    signingKey: string;
    /** jwt_signing_token contents: a chain-issuer client JWT to chain server JWTs to */
    chainToken?: string;
    /** server_jwt_validity in ms */
    validityMs?: number;
  };
  /** wire protocol of the nodes: v2 nodes get KSUID nonces like a v2 Go client sends */
  protocolVersion?: 1 | 2;
}

/**
 * jwt_verify_cert as the flow wants it: loaded now so a bad value stops the start, then re-read
 * whenever the file changes (the Go provisioner reads it for every node, so a rotated key takes
 * effect without a restart; we do the same without a read per node).
 */
export function jwtVerifierSource(pathOrHex: string): () => JwtVerifier {
  const mtime = (): number | undefined => {
    try {
      return statSync(pathOrHex).mtimeMs;
    } catch {
      return undefined;
    }
  };
  let seen = mtime();
  let verifier = loadJwtVerifier(pathOrHex);
  return () => {
    const m = mtime();
    if (m !== seen) {
      verifier = loadJwtVerifier(pathOrHex);
      seen = m;
    }
    return verifier;
  };
}

export function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    // the error names the file, never its contents
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The credentials part of the flow options (features.jwt / ed25519, protocol), checked before anything starts. */
export function credentialFlowOptions(s: Settings): CredentialOptions {
  const problems = credentialProblems(s);
  if (problems.length) throw new Error(`invalid credentials configuration:\n  ${problems.join("\n  ")}`);
  const out: CredentialOptions = { protocolVersion: s.protocol };
  if (s.jwt) out.jwt = { verifier: jwtVerifierSource(s.jwtVerifyCert!) };
  if (s.ed25519) {
    const signingKey = readSecretFile(s.jwtSigningKeyFile!, "jwt_signing_key");
    // like the CA key: a signing key others can read is refused, not used
    assertPrivateKeyFile(s.jwtSigningKeyFile!, "jwt_signing_key");
    parseSigningKey(signingKey);
    const chainToken = s.jwtSigningTokenFile ? readSecretFile(s.jwtSigningTokenFile, "jwt_signing_token").trim() : undefined;
    // sign one throwaway token now: a key that does not match the chain token, or an expired
    // chain token, would otherwise only show up as every node being deferred
    signServerJwt({ identity: "startup.check", publicKey: "00".repeat(32) }, signingKey, { validity: s.serverJwtValidityMs, chainToken });
    out.ed25519 = { signingKey, chainToken, validityMs: s.serverJwtValidityMs };
  }
  return out;
}
