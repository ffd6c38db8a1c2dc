/**
 * Configuration values that look secret never reach the audit log or the logs: passwords,
 * tokens, keys and seeds are replaced with a marker that says a value was there.
 */
const DEFAULT_SECRET_KEYS = /(password|passwd|secret|token|private|seed|credential|\.key$|_key$|^key$)/i;

export const REDACTED = "[redacted]";

// Every node's configuration has much the same keys: test each key against the default pattern
// once, not once per node (a regular expression per key and node was about 1% of the daemon's time in `npm run bench`).
const SECRET_VERDICTS = new Map<string, boolean>();
const MAX_VERDICTS = 10_000;

function isSecretKey(k: string, pattern: RegExp): boolean {
  if (pattern !== DEFAULT_SECRET_KEYS) return pattern.test(k);
  let v = SECRET_VERDICTS.get(k);
  if (v === undefined) {
    v = pattern.test(k);
    if (SECRET_VERDICTS.size < MAX_VERDICTS) SECRET_VERDICTS.set(k, v);
  }
  return v;
}

export function redactConfiguration(cfg: Record<string, string>, pattern: RegExp = DEFAULT_SECRET_KEYS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in cfg) {
    if (!Object.prototype.hasOwnProperty.call(cfg, k)) continue;
    const v = cfg[k]!;
    out[k] = v !== "" && isSecretKey(k, pattern) ? REDACTED : v;
  }
  return out;
}
