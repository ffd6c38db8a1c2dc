/**
 * The built-in CA: a key and self-signed certificate in a directory, and a worker pool that
 * issues leaf certificates from them. The key never leaves this process (workers get it by
 * structured clone of its DER); a directory others can write and a key file another user owns
 * or others can read are refused outright (file-trust.ts).
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CaExistsError } from "./errors.js";
import { assertCaDirectory, assertPrivateKeyFile } from "./file-trust.js";
import { isOwnParse } from "./csr-inspect.js";
import { assertKeyAcceptable } from "./csr-policy.js";
import { CA_CHAIN_FILE, CA_CSR_FILE, createCaRequest, readPendingKey, removePendingRequest, verifyIssuingChain } from "./intermediate.js";
import { createCaCertificate } from "./issue.js";
import { encodePem, splitCertificates } from "../der/pem.js";
import { SignPool } from "./pool.js";
import type { SignRequest, SignedCertificate, Signer } from "../types/index.js";

export const CA_CERT_FILE = "ca.pem";
export const CA_KEY_FILE = "ca-key.pem";

export interface InitCaOptions {
  key?: "rsa" | "ecdsa";
  commonName?: string;
  validityDays?: number;
  force?: boolean;
  /** make only the key and a CSR (ca.csr) for an offline root to sign; `importIntermediate` installs the result */
  intermediate?: boolean;
}

export interface BuiltinCa extends Signer {
  readonly caCertificatePem: string;
  /** worker thread ids, for diagnostics and tests */
  threadIds(): number[];
  /** certificates issued per worker thread id */
  stats(): Record<number, number>;
}

export async function initBuiltinCa(dir: string, opts: InitCaOptions = {}): Promise<{ certPath: string; keyPath: string; csrPath?: string }> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const chainPath = join(dir, CA_CHAIN_FILE);
  if (!opts.force && (existsSync(certPath) || existsSync(keyPath))) {
    throw new CaExistsError(dir, existsSync(keyPath) ? keyPath : certPath);
  }
  if (existsSync(dir)) assertCaDirectory(dir);
  else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // the umask may have taken bits away, never added them; set it exactly all the same
    chmodSync(dir, 0o700);
  }
  const kind = opts.key ?? "ecdsa";
  if (kind !== "rsa" && kind !== "ecdsa") throw new Error(`CA key type must be rsa or ecdsa, got ${String(kind)}`);
  const { privateKey } = kind === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const commonName = opts.commonName ?? "Choria Provisioner CA";
  const keyPem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  // a forced init replaces the whole CA: a chain left over would describe another certificate
  rmSync(chainPath, { force: true });
  if (opts.intermediate) {
    const csrPath = join(dir, CA_CSR_FILE);
    rmSync(certPath, { force: true });
    writeAtomically(keyPath, keyPem, 0o600);
    writeAtomically(csrPath, createCaRequest(privateKey, commonName), 0o644);
    return { certPath, keyPath, csrPath };
  }
  removePendingRequest(dir);
  const cert = createCaCertificate(privateKey, { commonName, validityDays: opts.validityDays ?? 3650 });
  writeAtomically(keyPath, keyPem, 0o600);
  writeAtomically(certPath, cert.pem, 0o644);
  return { certPath, keyPath };
}

/**
 * Installs the certificate an offline root signed for this directory's key (after
 * `initBuiltinCa(dir, { intermediate: true })`), with the chain above it, issuer first and the
 * self-signed root last. Nothing is written unless every check of `verifyIssuingChain` passes.
 */
export function importIntermediate(dir: string, o: { certPem: string; chainPem: string; certFile: string; chainFile: string; force?: boolean }): { certPath: string; chainPath: string } {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const chainPath = join(dir, CA_CHAIN_FILE);
  assertCaFiles(dir);
  if (!o.force && existsSync(certPath)) throw new CaExistsError(dir, certPath);
  const { cert, chain } = verifyIssuingChain({ key: readPendingKey(dir, keyPath), ...o });
  writeAtomically(chainPath, chain.map((c) => encodePem("CERTIFICATE", c.raw)).join(""), 0o644);
  writeAtomically(certPath, encodePem("CERTIFICATE", cert.raw), 0o644);
  removePendingRequest(dir);
  return { certPath, chainPath };
}

// The temporary file is created 0600 with O_EXCL, so the key is never briefly world-readable
// and a crash leaves the old CA intact rather than a half-written one.
function writeAtomically(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, content, { mode, flag: "wx" });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** the directory and its key can be trusted (file-trust.ts); the key file must exist */
export function assertCaFiles(dir: string): void {
  assertCaDirectory(dir);
  assertPrivateKeyFile(join(dir, CA_KEY_FILE));
}

export interface LoadedCa {
  key: KeyObject;
  certPem: string;
  certDer: Uint8Array;
  /** the certificates above an intermediate CA, issuer first, root last; empty for a self-signed CA */
  chainPems: string[];
}

export function loadCa(dir: string): LoadedCa {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (!existsSync(keyPath)) throw new Error(`no CA key at ${keyPath}; create one with: choria-provisioner ca init --dir ${dir}`);
  assertCaFiles(dir);
  if (!existsSync(certPath) && existsSync(join(dir, CA_CSR_FILE))) {
    throw new Error(`the intermediate CA in ${dir} has no certificate yet: have the root sign ${join(dir, CA_CSR_FILE)}, then run: choria-provisioner ca import --dir ${dir} --cert FILE --chain FILE`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyPath));
  } catch (e) {
    throw new Error(`CA key ${keyPath} could not be read: ${(e as Error).message}`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
  } catch (e) {
    throw new Error(`CA certificate ${certPath} could not be read: ${(e as Error).message}`);
  }
  const certSpki = cert.publicKey.export({ format: "der", type: "spki" });
  const keySpki = createPublicKey(key).export({ format: "der", type: "spki" });
  if (!certSpki.equals(keySpki)) throw new Error(`CA certificate ${certPath} does not belong to the key ${keyPath}`);
  if (!cert.ca) throw new Error(`CA certificate ${certPath} is not a CA certificate (basicConstraints CA:TRUE missing)`);
  if (new Date(cert.validTo) <= new Date()) throw new Error(`CA certificate ${certPath} expired on ${new Date(cert.validTo).toISOString()}`);
  const chainPath = join(dir, CA_CHAIN_FILE);
  const chainPems = existsSync(chainPath) ? splitCertificates(readFileSync(chainPath, "utf8")) : [];
  if (chainPems.length > 0) {
    // checked again at every start: a chain file edited by hand must not reach nodes broken
    try {
      verifyIssuingChain({ key, certPem: encodePem("CERTIFICATE", cert.raw), chainPem: chainPems.join(""), certFile: certPath, chainFile: chainPath });
    } catch (e) {
      throw new Error(`CA chain in ${dir} does not verify: ${(e as Error).message}`);
    }
  }
  return { key, certDer: new Uint8Array(cert.raw), certPem: encodePem("CERTIFICATE", cert.raw), chainPems };
}

/**
 * What nodes receive. go-choria writes configure.certificate to certificate.pem, which
 * tls.LoadX509KeyPair reads whole and presents as the TLS chain, and configure.ca to ca.pem,
 * which becomes its pool of trusted roots (AppendCertsFromPEM: every certificate is an anchor,
 * order does not matter to Go). So the leaf travels with the intermediates above it (RFC 8446
 * order: each certifies the one before), and the CA file holds the issuing CA first, root last.
 */
export function deliveredChain(ca: Pick<LoadedCa, "certPem" | "chainPems">): { leafSuffix: string; caPem: string } {
  // a self-signed CA is the root: nothing travels with the leaf
  if (ca.chainPems.length === 0) return { leafSuffix: "", caPem: ca.certPem };
  return { leafSuffix: [ca.certPem, ...ca.chainPems.slice(0, -1)].join(""), caPem: [ca.certPem, ...ca.chainPems].join("") };
}

export async function openBuiltinCa(dir: string, opts: { workers?: number } = {}): Promise<BuiltinCa> {
  const ca = loadCa(dir);
  const delivered = deliveredChain(ca);
  const leafSuffix = delivered.leafSuffix;
  const pool = await SignPool.start({ caKeyDer: new Uint8Array(ca.key.export({ format: "der", type: "pkcs8" })), caCertDer: ca.certDer }, { size: opts.workers });
  return {
    kind: "builtin",
    caCertificatePem: delivered.caPem,
    threadIds: () => pool.threadIds(),
    stats: () => pool.stats(),
    async sign(req: SignRequest): Promise<SignedCertificate> {
      if (!req.identity) throw new Error("sign request needs an identity");
      // only our own parse of this very PEM is trusted; anything else is parsed and verified in the worker
      const own = isOwnParse(req.checked, req.csrPem) ? req.checked : undefined;
      if (own) assertKeyAcceptable(own.summary);
      const checked = own ? { spkiDer: own.spkiDer, subjectPublicKey: own.subjectPublicKey } : undefined;
      const r = await pool.run({ identity: req.identity, csrPem: own ? "" : req.csrPem, profile: { validityDays: req.profile.validityDays, sans: [...(req.profile.sans ?? [])] }, checked });
      return { certificatePem: r.certificatePem + leafSuffix, caPem: delivered.caPem, serial: r.serial, fingerprint: r.fingerprint, notAfter: r.notAfter, ...(r.leaf ? { leaf: r.leaf } : {}) };
    },
    close: () => pool.close(),
  };
}
