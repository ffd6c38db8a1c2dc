/**
 * RSA-2048 keys are far too slow to make per node (tens of ms each), so the fleet shares a
 * pool: generated in parallel on the libuv thread pool at start, cached on disk so the next
 * run (or the next test file) starts in milliseconds. A node keeps one pool key for its life.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePem } from "../der/pem.js";

export interface PoolKey {
  index: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
  spkiDer: Buffer;
  /** what gencsr returns as public_key: a PKCS#1 RSAPublicKey under a "PUBLIC KEY" label, as Go does */
  pkcs1PublicPem: string;
}

export interface KeyPoolOptions {
  size?: number;
  /** directory for cached keys; false disables caching. Default <tmpdir>/choria-provisioner-sim-keys */
  cacheDir?: string | false;
}

export const DEFAULT_KEY_POOL_SIZE = 64;

export function defaultKeyCacheDir(): string {
  return join(tmpdir(), "choria-provisioner-sim-keys");
}

function toPoolKey(index: number, privateKey: KeyObject): PoolKey {
  const publicKey = createPublicKey(privateKey);
  return {
    index,
    privateKey,
    publicKey,
    spkiDer: publicKey.export({ type: "spki", format: "der" }),
    pkcs1PublicPem: encodePem("PUBLIC KEY", publicKey.export({ type: "pkcs1", format: "der" })),
  };
}

function generate(): Promise<KeyObject> {
  return new Promise((resolve, reject) =>
    generateKeyPair("rsa", { modulusLength: 2048, publicExponent: 0x10001 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
  );
}

export class KeyPool {
  readonly keys: PoolKey[];
  /** ms spent generating keys that were not cached */
  readonly generatedMs: number;
  readonly generated: number;

  private constructor(keys: PoolKey[], generated: number, generatedMs: number) {
    this.keys = keys;
    this.generated = generated;
    this.generatedMs = generatedMs;
  }

  get size(): number {
    return this.keys.length;
  }

  key(i: number): PoolKey {
    return this.keys[i % this.keys.length];
  }

  static async create(o: KeyPoolOptions = {}): Promise<KeyPool> {
    const size = o.size ?? DEFAULT_KEY_POOL_SIZE;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`key pool size must be a positive integer, got ${size}`);
    const dir = o.cacheDir === false ? undefined : (o.cacheDir ?? defaultKeyCacheDir());
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const started = performance.now();
    let generated = 0;
    const keys = await Promise.all(
      Array.from({ length: size }, async (_, i) => {
        const file = dir ? join(dir, `rsa2048-${i}.pem`) : undefined;
        if (file) {
          try {
            return toPoolKey(i, createPrivateKey(readFileSync(file)));
          } catch {
            // missing or corrupt: make a new one below
          }
        }
        const priv = await generate();
        generated++;
        if (file) {
          // write then rename, so a concurrent test process never reads half a key
          const tmp = `${file}.${process.pid}.${i}.tmp`;
          writeFileSync(tmp, priv.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
          renameSync(tmp, file);
        }
        return toPoolKey(i, priv);
      }),
    );
    return new KeyPool(keys, generated, generated ? performance.now() - started : 0);
  }
}
