/**
 * Whether the CA's directory and private keys can be trusted before they are used: whoever can
 * write the directory can swap the key or the certificate (and so issue certificates the fleet
 * trusts), and a key file someone else owns or can read is not this CA's secret. Refused with
 * the path, the problem and the command that fixes it; checked at daemon start and by every
 * `ca` command that uses the key.
 */
import { statSync, type Stats } from "node:fs";

/** the effective uid this process runs as; undefined where there are none (Windows) */
function currentUid(): number | undefined {
  return typeof process.geteuid === "function" ? process.geteuid() : undefined;
}

function statOf(path: string, what: string): Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw new Error(`${what} ${path} cannot be read: ${(e as Error).message}`);
  }
}

const octal = (mode: number): string => "0" + (mode & 0o777).toString(8);

/**
 * Throws unless `dir` is a directory that only its owner can write, and that owner is this
 * user or root (root can replace anything anyway).
 */
export function assertCaDirectory(dir: string): void {
  const st = statOf(dir, "CA directory");
  if (!st.isDirectory()) throw new Error(`CA directory ${dir} is not a directory`);
  if ((st.mode & 0o022) !== 0) {
    throw new Error(`CA directory ${dir} has mode ${octal(st.mode)}: group or others can write to it and so replace the CA key or certificate (run: chmod 700 ${dir})`);
  }
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new Error(`CA directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}) or root: its owner can replace the CA key or certificate (run: chown ${uid} ${dir})`);
  }
}

/**
 * Throws unless the key file is a regular file owned by this user with no group/other
 * permission bits.
 */
export function assertPrivateKeyFile(path: string, what = "CA key"): void {
  const st = statOf(path, what);
  if (!st.isFile()) throw new Error(`${what} ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`${what} ${path} has mode ${octal(st.mode)}: it must not be accessible by group or others (run: chmod 600 ${path})`);
  }
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${what} ${path} is owned by uid ${st.uid}, not by the user this runs as (uid ${uid}): a key another user owns is theirs to change or read (run: chown ${uid} ${path})`);
  }
}
