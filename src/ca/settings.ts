/** The CA parts the daemon opens from its settings: the configured signer and the CSR checker the flow uses. */
import { existsSync, readFileSync } from "node:fs";
import type { Settings } from "../config/index.js";
import { CsrRefusedError, type CsrChecker, type Signer } from "../types/index.js";
import { openBuiltinCa } from "./builtin-ca.js";
import { createCfsslSigner } from "./cfssl.js";
import { isOwnParse, parseCsr } from "./csr-inspect.js";
import { checkCsr, checkParsedCsr } from "./csr-policy.js";
import { createExecSigner } from "./exec-signer.js";
import { CertificateLedger } from "./ledger.js";
import { withLedger, type LedgerRecorder } from "./ledger-signer.js";

/** the configured signer; with a ledger configured (the built-in CA's default), it records every certificate before returning it */
export type OpenedSigner = Signer & { ledger?: CertificateLedger; recordThrough?(r: LedgerRecorder): void };

export async function openSigner(s: Pick<Settings, "ca">): Promise<OpenedSigner> {
  const signer = await openBareSigner(s);
  if (!s.ca.ledger) return signer;
  let ledger: CertificateLedger;
  try {
    ledger = CertificateLedger.open(s.ca.ledger);
  } catch (e) {
    await signer.close();
    throw e;
  }
  return withLedger(signer, ledger);
}

async function openBareSigner(s: Pick<Settings, "ca">): Promise<Signer> {
  const caPem = s.ca.caFile ? readFileSync(s.ca.caFile, "utf8") : undefined;
  switch (s.ca.type) {
    case "builtin": {
      if (!s.ca.dir) throw new Error("PKI is on with the built-in CA but no CA directory is set (--ca-dir or ca.dir)");
      if (!existsSync(s.ca.dir)) throw new Error(`CA directory ${s.ca.dir} does not exist; create one with: choria-provisioner ca init --dir ${s.ca.dir}`);
      return openBuiltinCa(s.ca.dir, { workers: s.ca.workers });
    }
    case "cfssl":
      if (!s.ca.url) throw new Error("ca.type cfssl needs ca.url");
      return createCfsslSigner({ url: s.ca.url, profile: s.ca.profile, label: s.ca.label, timeoutMs: s.ca.timeoutMs, caPem });
    case "exec":
      if (!s.ca.command) throw new Error("ca.type exec needs ca.command");
      return createExecSigner({ command: s.ca.command, args: s.ca.args, timeoutMs: s.ca.timeoutMs, caPem });
  }
}

export function csrChecker(denyList?: string[]): CsrChecker {
  // case-insensitive like the built-in deny list: DNS names are
  const denyPatterns = denyList?.map((p) => new RegExp(p, "i"));
  return {
    inspect(pem) {
      try {
        // parsed once here; check() reuses it (parsing and verifying dominated the main thread)
        const parsed = parseCsr(pem);
        return { ok: true, csr: parsed.summary, parsed };
      } catch (e) {
        if (e instanceof CsrRefusedError) return { ok: false, code: e.code, reason: e.message };
        return { ok: false, code: "malformed", reason: (e as Error).message };
      }
    },
    check(pem, identity, allowedSans, parsed) {
      const policy = { identity, allowedSans, denyPatterns };
      // only a parse of ours, of this very PEM, is trusted to skip parsing and verifying again
      return isOwnParse(parsed, pem) ? checkParsedCsr(parsed, policy) : checkCsr(pem, policy);
    },
  };
}
