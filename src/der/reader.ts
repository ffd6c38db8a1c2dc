/**
 * A strict, allocation-light DER reader for the X.509 structures on the per-node hot path
 * (the provisioner reading CSRs, the simulator reading the certificates it is sent).
 *
 * Why not asn1js/pkijs or node's X509Certificate: profiling `npm run bench` showed their
 * general-purpose object trees (asn1js, @peculiar/utils) and OpenSSL 3's decoder framework
 * (X509Certificate, createPublicKey of SPKI DER) as the largest per-node costs; reading the
 * handful of fields we need straight from the bytes costs a small fraction of that
 * (bench/README.md, "Figures behind the code").
 *
 * Strict on purpose: these bytes come from untrusted peers. Indefinite lengths, non-minimal
 * length encodings, multi-byte tags, elements overrunning their parent and trailing bytes are
 * all errors, so two parsers can never disagree about what a request contains.
 */

export class DerError extends Error {
  override name = "DerError";
}

/** One element: tag byte, where its header starts, where its content starts and ends. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

export const TAGS = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  t61String: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

const TAG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TAGS).map(([k, v]) => [v, k]));

function tagName(tag: number): string {
  return TAG_NAMES[tag] ?? `tag 0x${tag.toString(16).padStart(2, "0")}`;
}

/** Reads the element at `off`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, off: number, limit = buf.length): Tlv {
  if (off + 2 > limit) throw new DerError(`truncated element at byte ${off}`);
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${off} is not supported`);
  let p = off + 1;
  const first = buf[p++]!;
  let len: number;
  if (first < 0x80) len = first;
  else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError(`indefinite length at byte ${off} is not DER`);
    if (n > 4) throw new DerError(`length of ${n} bytes at byte ${off} is too large`);
    if (p + n > limit) throw new DerError(`truncated length at byte ${off}`);
    if (buf[p] === 0) throw new DerError(`non-minimal length at byte ${off}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80) throw new DerError(`non-minimal length at byte ${off}`);
  }
  const end = p + len;
  if (end > limit) throw new DerError(`${tagName(tag)} at byte ${off} overruns its container (${len} bytes declared)`);
  return { tag, start: off, contentStart: p, end };
}

/** Reads the element at `off` and checks its tag. */
export function expectTlv(buf: Uint8Array, off: number, tag: number, limit = buf.length, what = tagName(tag)): Tlv {
  const t = readTlv(buf, off, limit);
  if (t.tag !== tag) throw new DerError(`expected ${what} at byte ${off}, found ${tagName(t.tag)}`);
  return t;
}

/** Parses a whole buffer as exactly one element of the given tag (trailing bytes are an error). */
export function readRoot(buf: Uint8Array, tag: number, what?: string): Tlv {
  const t = expectTlv(buf, 0, tag, buf.length, what);
  if (t.end !== buf.length) throw new DerError(`${buf.length - t.end} trailing bytes after the ${what ?? tagName(tag)}`);
  return t;
}

/** The elements inside a constructed element; they must fill it exactly. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new DerError(`${tagName(parent.tag)} at byte ${parent.start} is not constructed`);
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const c = readTlv(buf, p, parent.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function content(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.contentStart, t.end);
}

/** The element's own bytes, header included (what a signature covers). */
export function raw(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

export function oidString(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== TAGS.oid) throw new DerError(`expected oid at byte ${t.start}, found ${tagName(t.tag)}`);
  if (t.end === t.contentStart) throw new DerError(`empty oid at byte ${t.start}`);
  const parts: number[] = [];
  let v = 0;
  let first = true;
  for (let p = t.contentStart; p < t.end; p++) {
    const b = buf[p]!;
    if (v === 0 && b === 0x80) throw new DerError(`non-minimal oid arc at byte ${p}`);
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`oid arc too large at byte ${p}`);
    if (b & 0x80) continue;
    if (first) {
      const a = v < 40 ? 0 : v < 80 ? 1 : 2;
      parts.push(a, v - a * 40);
      first = false;
    } else parts.push(v);
    v = 0;
  }
  if (buf[t.end - 1]! & 0x80) throw new DerError(`truncated oid at byte ${t.start}`);
  return parts.join(".");
}

/** BIT STRING content without its unused-bits byte; only whole-byte strings (keys, signatures). */
export function bitStringBytes(buf: Uint8Array, t: Tlv): Uint8Array {
  if (t.tag !== TAGS.bitString) throw new DerError(`expected bitString at byte ${t.start}, found ${tagName(t.tag)}`);
  if (t.end === t.contentStart) throw new DerError(`empty bitString at byte ${t.start}`);
  if (buf[t.contentStart] !== 0) throw new DerError(`bitString at byte ${t.start} has unused bits`);
  return buf.subarray(t.contentStart + 1, t.end);
}

const latin1 = new TextDecoder("latin1");
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf16be = new TextDecoder("utf-16be", { fatal: true });

/** The text of a directory string or IA5String, by its type. */
export function stringValue(buf: Uint8Array, t: Tlv): string {
  const c = content(buf, t);
  switch (t.tag) {
    case TAGS.utf8String:
      try {
        return utf8Strict.decode(c);
      } catch {
        throw new DerError(`invalid UTF-8 in utf8String at byte ${t.start}`);
      }
    case TAGS.printableString:
    case TAGS.ia5String:
    case TAGS.t61String:
      return latin1.decode(c);
    case TAGS.bmpString:
      try {
        return utf16be.decode(c);
      } catch {
        throw new DerError(`invalid bmpString at byte ${t.start}`);
      }
    case TAGS.universalString: {
      if (c.length % 4 !== 0) throw new DerError(`invalid universalString at byte ${t.start}`);
      let s = "";
      for (let i = 0; i < c.length; i += 4) s += String.fromCodePoint(((c[i]! << 24) | (c[i + 1]! << 16) | (c[i + 2]! << 8) | c[i + 3]!) >>> 0);
      return s;
    }
    default:
      throw new DerError(`${tagName(t.tag)} at byte ${t.start} is not a string`);
  }
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), in ms. */
export function timeValue(buf: Uint8Array, t: Tlv): number {
  const s = latin1.decode(content(buf, t));
  const m = t.tag === TAGS.utcTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === TAGS.generalizedTime ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new DerError(`invalid time at byte ${t.start}`);
  let year = Number(m[1]);
  if (t.tag === TAGS.utcTime) year += year < 50 ? 2000 : 1900;
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (!Number.isFinite(ms)) throw new DerError(`invalid time at byte ${t.start}`);
  return ms;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
