import { Command, Option } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { numberArg } from "../args.js";
import { parseDuration } from "../../config/index.js";
import { CertificateLedger, REVOCATION_REASONS, writeCrl, ledgerEntryFor, type RevocationReason, type LedgerEntry, assertCaFiles, CaExistsError, ChainError, checkCsr, importIntermediate, initBuiltinCa, inspectCsr, openBuiltinCa, CsrRefusedError } from "../../ca/index.js";


function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function fail(message: string, exitCode: number): never {
  throw Object.assign(new Error(message), { exitCode });
}

/** The ledger a CA command reads: --ledger, else ledger.sqlite in --dir (where the daemon keeps it by default). */
function ledgerPath(o: { dir?: string; ledger?: string }): string {
  if (o.ledger) return o.ledger;
  if (o.dir) return join(o.dir, "ledger.sqlite");
  fail("name the ledger: --dir DIR (its ledger.sqlite) or --ledger FILE", 2);
}

function openLedger(o: { dir?: string; ledger?: string }, mustExist = true): CertificateLedger {
  const path = ledgerPath(o);
  if (mustExist && !existsSync(path)) fail(`no certificate ledger at ${path}: the CA has issued nothing yet, or ca.ledger names another file (--ledger)`, 2);
  try {
    return CertificateLedger.open(path);
  } catch (e) {
    fail((e as Error).message, 2);
  }
}

function entryJson(e: LedgerEntry): object {
  const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
  return { ...e, notBefore: iso(e.notBefore), notAfter: iso(e.notAfter), issuedAt: iso(e.issuedAt), revokedAt: iso(e.revokedAt) };
}

function entryLine(e: LedgerEntry): string {
  const state = e.revokedAt !== undefined ? `revoked ${new Date(e.revokedAt).toISOString()} (${e.revocationReason})` : e.notAfter < Date.now() ? "expired" : "valid";
  return [e.serial, e.identity, new Date(e.notAfter).toISOString(), e.signer, e.policyVersion || "-", state].join("  ");
}

function readCsr(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    fail(`cannot read CSR ${file}: ${(e as Error).message}`, 2);
  }
}

export function register(program: Command): void {
  const ca = program.command("ca").description("built-in certificate authority: create it, sign CSRs by hand, inspect CSRs");

  ca.command("init")
    .description("create a CA key (mode 0600) and self-signed CA certificate in DIR (made mode 0700; an existing DIR others can write is refused); with --intermediate, the key and a CSR for an offline root to sign")
    .requiredOption("--dir <dir>", "CA directory")
    .addOption(new Option("--key <type>", "CA key type").choices(["rsa", "ecdsa"]).default("ecdsa"))
    .option("--cn <name>", "CA certificate common name", "Choria Provisioner CA")
    .option("--days <n>", "CA certificate validity in days", numberArg({ min: 1 }), 3650)
    .option("--force", "replace an existing CA (every certificate it issued stops being trusted)", false)
    .option("--intermediate", "write the key and a CSR (ca.csr) for an offline root to sign; install its answer with ca import", false)
    .action(async (o: { dir: string; key: "rsa" | "ecdsa"; cn: string; days: number; force: boolean; intermediate: boolean }) => {
      const r = await initBuiltinCa(o.dir, { key: o.key, commonName: o.cn, validityDays: o.days, force: o.force, intermediate: o.intermediate }).catch((e: unknown) => {
        if (e instanceof CaExistsError) fail(`${e.message}; ca init --force replaces it, and every certificate it issued stops being trusted`, 2);
        throw e;
      });
      if (r.csrPath) {
        process.stdout.write(`CA key:         ${r.keyPath} (mode 0600)\nCA request:     ${r.csrPath}\nHave the root sign it as a CA (basicConstraints CA:TRUE, pathlen:0; keyUsage keyCertSign, cRLSign), then run:\n  choria-provisioner ca import --dir ${o.dir} --cert SIGNED.pem --chain ROOT-CHAIN.pem\n`);
        return;
      }
      process.stdout.write(`CA certificate: ${r.certPath}\nCA key:         ${r.keyPath} (mode 0600)\n`);
    });

  ca.command("import")
    .description("install the certificate an offline root signed for 'ca init --intermediate', after checking it and its chain")
    .requiredOption("--dir <dir>", "CA directory")
    .requiredOption("--cert <file>", "the signed CA certificate (PEM)")
    .requiredOption("--chain <file>", "the certificates above it, its issuer first and the self-signed root last (PEM)")
    .option("--force", "replace a certificate already imported", false)
    .action((o: { dir: string; cert: string; chain: string; force: boolean }) => {
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f, "utf8");
        } catch (e) {
          fail(`cannot read ${what} ${f}: ${(e as Error).message}`, 2);
        }
      };
      try {
        const r = importIntermediate(o.dir, { certPem: read(o.cert, "certificate"), chainPem: read(o.chain, "chain"), certFile: o.cert, chainFile: o.chain, force: o.force });
        process.stdout.write(`CA certificate: ${r.certPath}\nCA chain:       ${r.chainPath}\n`);
      } catch (e) {
        if (e instanceof ChainError) fail(`certificate not imported: ${e.message}`, 1);
        if (e instanceof CaExistsError) fail(`${e.message}; ca import --force replaces it`, 2);
        throw e;
      }
    });

  ca.command("sign")
    .description("check a CSR against the CSR policy and sign it with the built-in CA; prints the certificate PEM")
    .requiredOption("--dir <dir>", "CA directory")
    .requiredOption("--csr <file>", "CSR PEM file ('-' for stdin)")
    .requiredOption("--identity <name>", "node identity; must equal the CSR's CN")
    .option("--san <name>", "extra SAN to grant (repeatable; IP addresses become IP SANs)", collect, [] as string[])
    .option("--days <n>", "certificate validity in days", numberArg({ min: 1 }), 365)
    .option("--chain", "print the CA certificate after the leaf", false)
    .action(async (o: { dir: string; csr: string; identity: string; san: string[]; days: number; chain: boolean }) => {
      const csrPem = readCsr(o.csr);
      const check = checkCsr(csrPem, { identity: o.identity, allowedSans: o.san });
      if (!check.ok) fail(`CSR refused (${check.code}): ${check.reason}`, 1);
      const signer = await openBuiltinCa(o.dir, { workers: 1 });
      try {
        const cert = await signer.sign({ identity: o.identity, csrPem, profile: { validityDays: o.days, sans: o.san } });
        // signed by hand is issued all the same: the ledger knows it before it is printed
        const ledger = openLedger(o, false);
        try {
          ledger.recordNow(ledgerEntryFor(cert, { identity: o.identity, signer: "cli" }));
        } finally {
          await ledger.close();
        }
        process.stdout.write(cert.certificatePem + (o.chain ? cert.caPem : ""));
        process.stderr.write(`serial ${cert.serial} sha256 ${cert.fingerprint} notAfter ${cert.notAfter}\n`);
      } finally {
        await signer.close();
      }
    });

  ca.command("list")
    .description("list the certificates in the ledger (every certificate the daemon or ca sign issued)")
    .option("--dir <dir>", "CA directory (its ledger.sqlite)")
    .option("--ledger <file>", "ledger file (ca.ledger)")
    .option("--identity <name>", "only this node's certificates")
    .option("--expiring <duration>", "only certificates not revoked that expire within this time (e.g. 30d)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (o: { dir?: string; ledger?: string; identity?: string; expiring?: string; format: "text" | "json" }) => {
      let within: number | undefined;
      try {
        within = o.expiring === undefined ? undefined : parseDuration(o.expiring, 0);
      } catch (e) {
        fail(`--expiring: ${(e as Error).message}`, 2);
      }
      const ledger = openLedger(o);
      try {
        const now = Date.now();
        let rows = o.identity !== undefined ? ledger.byIdentity(o.identity) : within !== undefined ? ledger.expiring(now + within, { from: now }) : ledger.all();
        if (o.identity !== undefined && within !== undefined) rows = rows.filter((e) => e.revokedAt === undefined && e.notAfter >= now && e.notAfter < now + within);
        if (o.format === "json") process.stdout.write(JSON.stringify(rows.map(entryJson), null, 2) + "\n");
        else process.stdout.write(rows.map(entryLine).join("\n") + (rows.length ? "\n" : ""));
      } finally {
        await ledger.close();
      }
    });

  ca.command("revoke")
    .description("revoke certificates in the ledger by serial or by node identity; with --dir the built-in CA's CRL is made again")
    .option("--dir <dir>", "built-in CA directory (its ledger.sqlite; the CRL is written to crl.pem there)")
    .option("--ledger <file>", "ledger file (ca.ledger), for a cfssl or exec signer: no CRL is made")
    .option("--serial <hex>", "the certificate's serial")
    .option("--identity <name>", "every certificate of this node")
    .addOption(new Option("--reason <reason>", "RFC 5280 reason").choices([...REVOCATION_REASONS]).default("unspecified"))
    .option("--crl <file>", "where the CRL goes (ca.crl_file; default crl.pem in --dir)")
    .option("--crl-validity <duration>", "the CRL's nextUpdate from now (ca.crl_validity)", "7d")
    .action(async (o: { dir?: string; ledger?: string; serial?: string; identity?: string; reason: RevocationReason; crl?: string; crlValidity: string }) => {
      if ((o.serial === undefined) === (o.identity === undefined)) fail("give exactly one of --serial or --identity", 2);
      let validityMs = 0;
      try {
        validityMs = parseDuration(o.crlValidity, 0);
      } catch (e) {
        fail(`--crl-validity: ${(e as Error).message}`, 2);
      }
      // the CRL is signed with the key: check it before anything is revoked, not after
      if (o.dir) assertCaFiles(o.dir);
      const ledger = openLedger(o);
      try {
        const done = ledger.revoke(o.serial !== undefined ? { serial: o.serial } : { identity: o.identity! }, o.reason);
        if (done.length === 0) fail(`nothing revoked: no certificate ${o.serial !== undefined ? `with serial ${o.serial}` : `of ${o.identity}`} that is not revoked already in ${ledger.path}`, 1);
        for (const e of done) process.stdout.write(`revoked ${e.serial} ${e.identity} (${o.reason})\n`);
        if (o.dir) {
          const crl = writeCrl({ caDir: o.dir, ledger, file: o.crl ?? join(o.dir, "crl.pem"), validityMs });
          process.stdout.write(`CRL: ${o.crl ?? join(o.dir, "crl.pem")} (${crl.entries} revoked, next update ${crl.nextUpdate.toISOString()})\n`);
        }
      } finally {
        await ledger.close();
      }
    });

  ca.command("inspect")
    .description("print what a CSR asks for as JSON; with --identity also run the CSR policy")
    .requiredOption("--csr <file>", "CSR PEM file ('-' for stdin)")
    .option("--identity <name>", "node identity to check the CSR against")
    .option("--san <name>", "extra SAN the policy would grant (repeatable)", collect, [] as string[])
    .action((o: { csr: string; identity?: string; san: string[] }) => {
      const csrPem = readCsr(o.csr);
      if (o.identity === undefined) {
        try {
          process.stdout.write(JSON.stringify(inspectCsr(csrPem), null, 2) + "\n");
        } catch (e) {
          if (e instanceof CsrRefusedError) fail(`CSR refused (${e.code}): ${e.message}`, 1);
          throw e;
        }
        return;
      }
      const r = checkCsr(csrPem, { identity: o.identity, allowedSans: o.san });
      process.stdout.write(JSON.stringify(r, null, 2) + "\n");
      if (!r.ok) process.exitCode = 1;
    });
}
