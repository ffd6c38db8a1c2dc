/**
 * A valid DNS name (RFC 1123): dot-separated labels of letters, digits and hyphens, 1-63
 * characters each, not starting or ending with a hyphen, 253 characters at most, no trailing
 * dot. Node identities become NATS subject tokens, certificate CNs and SANs, file names in
 * records and arguments to helpers: nothing else is safe in all of those places. Defined once
 * here so intake (provision/) and the CA (ca/) apply the same rule independently.
 */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

export const DNS_NAME_MAX = 253;

export function isDnsName(s: string): boolean {
  if (typeof s !== "string" || s.length === 0 || s.length > DNS_NAME_MAX) return false;
  for (const label of s.split(".")) if (!LABEL.test(label)) return false;
  return true;
}
