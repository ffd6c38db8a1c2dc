/**
 * Broker URLs may carry credentials (nats://user:password@host:4222). Every log line, error and
 * /status shows them with the userinfo replaced, whatever text they are part of.
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s"']+@/gi;

export function redactUrls(text: string): string {
  return text.replace(USERINFO, "$1REDACTED@");
}
