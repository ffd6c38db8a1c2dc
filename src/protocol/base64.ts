/**
 * Go's encoding/base64 StdEncoding: standard alphabet, padding required. The server
 * ignores CR and LF (Go's decoder skips them), and a string that does not decode is
 * used raw (request payloads, §2.6) — so we need a strict "does it decode" test that
 * Buffer.from(s, "base64") does not give (it silently accepts anything).
 */
const STRICT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeStdBase64(s: string): Buffer | undefined {
  const clean = s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]/g, "") : s;
  if (!STRICT.test(clean)) return undefined;
  return Buffer.from(clean, "base64");
}

export function encodeStdBase64(b: Uint8Array | string): string {
  return (typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString("base64");
}
