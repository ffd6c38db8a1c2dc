/**
 * Configuration values that look secret never reach the audit log or the logs: passwords,
 * tokens, keys and seeds are replaced with a marker that says a value was there.
 */
const DEFAULT_SECRET_KEYS = /(password|passwd|secret|token|private|seed|credential|\.key$|_key$|^key$)/i;

export const REDACTED = "[redacted]";

export function redactConfiguration(cfg: Record<string, string>, pattern: RegExp = DEFAULT_SECRET_KEYS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg)) out[k] = pattern.test(k) && v !== "" ? REDACTED : v;
  return out;
}
