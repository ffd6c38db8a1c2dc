/**
 * pino with the project's redaction rules: tokens, passwords and keys never reach a log line,
 * whatever object a caller passes.
 *
 * Redaction is a log formatter, not pino's `redact` option: that one (@pinojs/redact in pino 10)
 * re-parses every configured path on every call and copies the object; for the daemon's line
 * per provisioned node it cost more than the rest of the line, and a tenth of the daemon's
 * allocation per node (bench/README.md, "Figures behind the code"). The keys below are a
 * fixed set checked at two levels, so one pass over the object's keys decides, and an object
 * with nothing secret in it (every line the daemon logs per node) is passed on as it is. A child
 * logger's bindings go through the same check by the child() override below: pino 10 resets the
 * `bindings` formatter for children (it formats the base pid/hostname only) and applies only
 * per-key serializers to child bindings, which cannot censor a secret one level down
 * (`child({ data: { key } })`). test/daemon/logger.test.ts fails without the override.
 */
import pino, { type Logger } from "pino";

/** censored wherever they appear as a key of the logged object or of an object directly in it */
export const SECRET_LOG_KEYS: ReadonlySet<string> = new Set(["token", "password", "pass", "key", "privateKey", "brokerPassword", "brokerToken", "adminToken"]);

export const LOG_CENSOR = "[redacted]";

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Error) && !ArrayBuffer.isView(v);
}

// headers.authorization (HTTP requests logged by the admin endpoint or a remote CA client)
function redactHeaders(v: unknown): unknown {
  return isPlainRecord(v) && "authorization" in v ? { ...v, authorization: LOG_CENSOR } : v;
}

function redactLevel(obj: Record<string, unknown>, nested: boolean): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
    const v = obj[k];
    let r: unknown = v;
    if (SECRET_LOG_KEYS.has(k)) r = LOG_CENSOR;
    else if (k === "headers") r = redactHeaders(v);
    else if (nested && isPlainRecord(v)) r = redactLevel(v, false);
    if (r !== v) {
      out ??= { ...obj };
      out[k] = r;
    }
  }
  return out ?? obj;
}

/** `obj` itself when nothing in it is secret, else a copy with every secret value censored; never mutates `obj` */
export function redactLogObject(obj: Record<string, unknown>): Record<string, unknown> {
  return redactLevel(obj, true);
}

export function createLogger(o: { level?: string; file?: string; name?: string } = {}): Logger {
  const opts = { name: o.name ?? "choria-provisioner", level: o.level ?? "info", formatters: { log: redactLogObject } };
  const log = pino(opts, pino.destination(o.file ? { dest: o.file, mkdir: true, sync: false } : { dest: 2, sync: false }));
  // pino makes a child with Object.create(parent), so children of children inherit this too
  const child = log.child;
  log.child = function (this: Logger, bindings: Record<string, unknown>, options?: unknown) {
    return child.call(this, redactLogObject(bindings), options as never);
  } as Logger["child"];
  return log;
}
