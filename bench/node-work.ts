/**
 * The provisioning work a node itself does, measured alone: what each simulated node of the
 * e2e fleet spends its CPU on beyond answering messages. A Choria server signs its CSR with
 * its RSA-2048 key (gencsr) and the simulator checks the certificate it is sent (configure:
 * parse, key and name match, signature by the CA). In `npm run bench` the fleet shares the
 * machine with the provisioner, so this is part of the machine's work per node.
 */
import { availableParallelism } from "node:os";
import { openBuiltinCa } from "../src/ca/index.js";
import { checkDeliveredCertificate } from "../src/sim/cert-check.js";
import { createCsrPem } from "../src/sim/csr.js";
import { KeyPool } from "../src/sim/keypool.js";

export interface NodeWorkRate {
  nodesPerSec: number;
  nodes: number;
  cpuMsPerNode: number;
  /** single-threaded, like the simulator */
  threads: 1;
  cores: number;
}

export async function measureNodeWork(o: { caDir: string; seconds?: number }): Promise<NodeWorkRate> {
  const keys = await KeyPool.create({ size: 8 });
  const ca = await openBuiltinCa(o.caDir, { workers: 1 });
  const nodes: Array<{ identity: string; spkiDer: Buffer; privateKey: import("node:crypto").KeyObject; certificate: string }> = [];
  try {
    for (const k of keys.keys) {
      const identity = `node${k.index}.example.net`;
      const csrPem = createCsrPem({ cn: identity, C: "GB", O: "Acme" }, k.spkiDer, k.privateKey);
      const signed = await ca.sign({ identity, csrPem, profile: { validityDays: 30, sans: [] } });
      nodes.push({ identity, spkiDer: k.spkiDer, privateKey: k.privateKey, certificate: signed.certificatePem });
    }
  } finally {
    await ca.close();
  }
  const caPem = ca.caCertificatePem;
  const one = (i: number): void => {
    const n = nodes[i % nodes.length]!;
    createCsrPem({ cn: n.identity, C: "GB", O: "Acme" }, n.spkiDer, n.privateKey);
    const r = checkDeliveredCertificate({ identity: n.identity, certificate: n.certificate, ca: caPem, publicKey: n.spkiDer });
    if (r.findings.length) throw new Error(`node-work check failed: ${JSON.stringify(r.findings)}`);
  };
  for (let i = 0; i < 200; i++) one(i); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + (o.seconds ?? 3) * 1000;
  let n = 0;
  while (performance.now() < end) one(n++);
  const secs = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  return { nodesPerSec: Math.round(n / secs), nodes: n, cpuMsPerNode: (c.user + c.system) / 1000 / n, threads: 1, cores: availableParallelism() };
}
