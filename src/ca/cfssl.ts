/**
 * Remote signing through cfssl's HTTP API (`cfssl serve` or multirootca). Transport trouble and
 * 5xx answers are CaUnavailableError (the node is deferred and retried); a 4xx / success:false
 * answer is CaRejectedError: cfssl looked at the request and said no.
 */
import { acceptRemoteCertificate } from "./cert-info.js";
import { isOwnParse, parseCsr } from "./csr-inspect.js";
import { CaRejectedError, CaUnavailableError, type SignRequest, type SignedCertificate, type Signer } from "../types/index.js";

export interface CfsslSignerOptions {
  /** base URL, e.g. http://127.0.0.1:8888 */
  url: string;
  /** cfssl signing profile; validity comes from it, not from the request */
  profile?: string;
  /** multirootca signer label */
  label?: string;
  timeoutMs?: number;
  /** chain for configure.ca; fetched from /api/v1/cfssl/info when absent */
  caPem?: string;
}

interface CfsslResponse {
  success?: boolean;
  result?: { certificate?: string } | null;
  errors?: Array<{ code?: number; message?: string }>;
}

export function createCfsslSigner(opts: CfsslSignerOptions): Signer {
  const base = opts.url.replace(/\/+$/, "");
  if (!/^https?:\/\//.test(base)) throw new Error(`cfssl url must be http(s)://..., got ${opts.url}`);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let chain: Promise<string> | undefined = opts.caPem ? Promise.resolve(opts.caPem) : undefined;

  async function call(path: string, body: Record<string, unknown>): Promise<string> {
    const url = base + path;
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === "TimeoutError" || err.name === "AbortError") throw new CaUnavailableError(`cfssl ${url} did not answer within ${timeoutMs} ms`, { cause: e });
      throw new CaUnavailableError(`cfssl ${url} unreachable: ${err.cause?.code ?? err.cause?.message ?? err.message}`, { cause: e });
    }
    let parsed: CfsslResponse | undefined;
    try {
      parsed = JSON.parse(text) as CfsslResponse;
    } catch {
      parsed = undefined;
    }
    const errors = (parsed?.errors ?? []).map((x) => `${x.code ?? "?"} ${x.message ?? ""}`.trim()).join("; ");
    if (status >= 500 || (!parsed && status !== 200)) throw new CaUnavailableError(`cfssl ${url} answered HTTP ${status}${errors ? `: ${errors}` : ""}`);
    if (!parsed || parsed.success !== true || status !== 200) throw new CaRejectedError(`cfssl ${url} refused (HTTP ${status})${errors ? `: ${errors}` : ""}`);
    const cert = parsed.result?.certificate;
    if (typeof cert !== "string" || !cert.includes("-----BEGIN CERTIFICATE-----")) throw new CaRejectedError(`cfssl ${url} answered without a certificate`);
    return cert;
  }

  function withTarget(body: Record<string, unknown>): Record<string, unknown> {
    if (opts.profile) body.profile = opts.profile;
    if (opts.label) body.label = opts.label;
    return body;
  }

  function caChain(): Promise<string> {
    if (!chain) {
      chain = call("/api/v1/cfssl/info", withTarget({}));
      // a failed lookup must not be cached: the next node retries it
      chain.catch(() => (chain = undefined));
    }
    return chain;
  }

  return {
    kind: "cfssl",
    async sign(req: SignRequest): Promise<SignedCertificate> {
      const csr = isOwnParse(req.checked, req.csrPem) ? req.checked : parseCsr(req.csrPem);
      const hosts = [req.identity, ...(req.profile.sans ?? []).filter((s) => s !== req.identity)];
      const [certificate, ca] = await Promise.all([call("/api/v1/cfssl/sign", withTarget({ certificate_request: req.csrPem, hosts })), caChain()]);
      return acceptRemoteCertificate(certificate, ca, csr.spkiDer, req.identity, `cfssl ${base}`);
    },
    async probe(): Promise<void> {
      await call("/api/v1/cfssl/info", withTarget({}));
    },
    async close(): Promise<void> {},
  };
}
