/**
 * pino with the project's redaction rules: tokens, passwords and keys never reach a log line,
 * whatever object a caller passes.
 */
import pino, { type Logger } from "pino";

export const REDACT_PATHS = [
  "token", "*.token", "password", "*.password", "pass", "*.pass", "key", "*.key", "privateKey", "*.privateKey",
  "config.token", "data.token", "data.key", "headers.authorization", "*.headers.authorization", "brokerPassword", "brokerToken", "adminToken",
];

export function createLogger(o: { level?: string; file?: string; name?: string } = {}): Logger {
  const opts = { name: o.name ?? "choria-provisioner", level: o.level ?? "info", redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  if (o.file) return pino(opts, pino.destination({ dest: o.file, mkdir: true, sync: false }));
  return pino(opts, pino.destination({ dest: 2, sync: false }));
}
