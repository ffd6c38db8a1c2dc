/** `--record DIR`: each node's inventory as a RecordedInventory file, ready as policy-test input. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RecordedInventory } from "../types/recorded.js";
import { inventoryData } from "./agents/rpcutil.js";
import type { SimNode } from "./node.js";
import type { SimRuntime } from "./runtime.js";

/** unverified JWT claims minus the secrets (cht token, chpwd password) */
export function safeJwtClaims(jwt: string | undefined): Record<string, unknown> | undefined {
  if (!jwt) return undefined;
  const part = jwt.trim().split(".")[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
    delete claims.cht;
    delete claims.chpwd;
    return claims;
  } catch {
    return undefined;
  }
}

export function recordedInventory(rt: SimRuntime, node: SimNode, now = new Date()): RecordedInventory {
  const r: RecordedInventory = {
    apiVersion: "choria-provisioner/v1",
    kind: "RecordedInventory",
    identity: node.identity,
    recordedAt: now.toISOString(),
    inventory: inventoryData(rt, node),
    // what this node's gencsr will produce (unless a CSR fault changes it)
    csr: { cn: node.identity, sans: [], keyType: "rsa", keyBits: 2048 },
  };
  const claims = safeJwtClaims(rt.provisioningJwt);
  if (claims) r.jwt = claims;
  return r;
}

export async function writeRecords(rt: SimRuntime, dir: string, nodes: readonly SimNode[]): Promise<number> {
  await mkdir(dir, { recursive: true });
  const now = new Date();
  let written = 0;
  // bounded concurrency: 100k parallel writes would exhaust file descriptors
  for (let i = 0; i < nodes.length; i += 256) {
    await Promise.all(
      nodes.slice(i, i + 256).map(async (n) => {
        await writeFile(join(dir, `${n.identity}.json`), JSON.stringify(recordedInventory(rt, n, now), null, 2) + "\n");
        written++;
      }),
    );
  }
  return written;
}
