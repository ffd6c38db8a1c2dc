/**
 * Go's encoding/base64 StdEncoding: standard alphabet, padding required. The server
 * ignores CR and LF (Go's decoder skips them), and a string that does not decode is
 * used raw (request payloads, §2.6) — so we need a strict "does it decode" test that
 * Buffer.from(s, "base64") does not give (it silently accepts anything).
 */
const EQ = 61;

export function decodeStdBase64(s: string): Buffer | undefined {
  const clean = s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]/g, "") : s;
  const n = clean.length;
  if (n % 4 !== 0) return undefined;
  // node decodes the URL alphabet too; Go's StdEncoding does not
  if (clean.includes("-") || clean.includes("_")) return undefined;
  const pad = n > 0 && clean.charCodeAt(n - 1) === EQ ? (clean.charCodeAt(n - 2) === EQ ? 2 : 1) : 0;
  const eq = clean.indexOf("=");
  if (eq !== -1 && eq < n - pad) return undefined;
  // node skips characters outside the alphabet, so any of them leaves the output short. This
  // replaced a strict regular expression that cost more than the decode itself on every message.
  const out = Buffer.from(clean, "base64");
  return out.length === (n / 4) * 3 - pad ? out : undefined;
}

export function encodeStdBase64(b: Uint8Array | string): string {
  return (typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString("base64");
}
