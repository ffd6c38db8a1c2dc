/**
 * The one PEM reader and writer. Reading is strict: CSRs come from untrusted nodes, so we never
 * guess at malformed input.
 */

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const B64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

export class PemError extends Error {
  override name = "PemError";
}

/**
 * Decodes every PEM block in `text`. Anything other than whitespace between blocks is an
 * error, as is a body that is not clean base64: a lenient decoder would let a node smuggle
 * a different DER than the text shows.
 */
export function decodePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let last = 0;
  for (const m of text.matchAll(BLOCK)) {
    if (text.slice(last, m.index).trim() !== "") throw new PemError("unexpected text outside PEM blocks");
    last = m.index! + m[0].length;
    const lines = m[2]!.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
    if (lines.some((l) => l.includes(":"))) throw new PemError(`encrypted or header-carrying PEM ${m[1]} is not supported`);
    const body = lines.join("");
    if (body === "" || !B64_LINE.test(body) || body.length % 4 !== 0) throw new PemError(`PEM ${m[1]} body is not valid base64`);
    blocks.push({ label: m[1]!, der: new Uint8Array(Buffer.from(body, "base64")) });
  }
  if (text.slice(last).trim() !== "") throw new PemError(blocks.length === 0 ? "no PEM block found" : "unexpected text after PEM blocks");
  return blocks;
}

/** RFC 7468 text: 64-character base64 lines; headers (RFC 1421, e.g. Proc-Type) before a blank line. */
export function encodePem(label: string, der: Uint8Array | ArrayBuffer, headers: ReadonlyArray<readonly [string, string]> = []): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  const hdr = headers.map(([k, v]) => `${k}: ${v}\n`).join("");
  return `-----BEGIN ${label}-----\n${hdr}${hdr ? "\n" : ""}${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Splits a certificate bundle (leaf first, then chain) into single-certificate PEM strings. */
export function splitCertificates(text: string): string[] {
  return decodePem(text).map((b) => {
    if (b.label !== "CERTIFICATE") throw new PemError(`expected CERTIFICATE, found ${b.label}`);
    return encodePem("CERTIFICATE", b.der);
  });
}
