/**
 * Worker thread body: issues certificates in batches. The CA key is imported once at start. A
 * task the daemon already parsed and verified on its main thread carries the key bytes and is
 * only signed; any other task's CSR is parsed and verified here first.
 */
import { parentPort, threadId, workerData } from "node:worker_threads";
import { createPrivateKey } from "node:crypto";
import { parseCsr, type ParsedCsr } from "./csr-inspect.js";
import { assertKeyAcceptable } from "./csr-policy.js";
import { CsrRefusedError } from "../types/index.js";
import { LeafIssuer } from "./issue.js";
import type { FromWorker, SignTask, SignTaskResult, SignWorkerData, ToWorker } from "./sign-protocol.js";

if (!parentPort) throw new Error("sign-worker must run in a worker thread");
const port = parentPort;
const data = workerData as SignWorkerData;
const issuer = new LeafIssuer(createPrivateKey({ key: Buffer.from(data.caKeyDer), format: "der", type: "pkcs8" }), new Uint8Array(data.caCertDer));

// performance.now() is per thread; timeOrigin makes timestamps comparable across threads
const clock = (): number => performance.timeOrigin + performance.now();

function signOne(t: SignTask): SignTaskResult {
  const startedAt = clock();
  try {
    let csr: Pick<ParsedCsr, "spkiDer" | "subjectPublicKey">;
    if (t.checked) csr = t.checked;
    else {
      const parsed = parseCsr(t.csrPem);
      assertKeyAcceptable(parsed.summary);
      csr = parsed;
    }
    const c = issuer.issue(csr, t.identity, t.profile);
    return { id: t.id, ok: true, certificatePem: c.pem, serial: c.serial, fingerprint: c.fingerprint, notAfter: c.notAfter, leaf: c.leaf, threadId, startedAt, endedAt: clock() };
  } catch (e) {
    const err = e as Error;
    return { id: t.id, ok: false, error: { name: err?.name ?? "Error", message: err?.message ?? String(e), code: e instanceof CsrRefusedError ? e.code : undefined } };
  }
}

port.on("message", (msg: ToWorker) => {
  if (msg.type === "stop") {
    // closing the port lets the thread's event loop empty, so it exits with code 0
    port.close();
    return;
  }
  const out: FromWorker = { type: "done", results: msg.tasks.map(signOne) };
  port.postMessage(out);
});

port.postMessage({ type: "ready", threadId } satisfies FromWorker);
