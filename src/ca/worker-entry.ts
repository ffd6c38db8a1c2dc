/**
 * Where a worker thread of the CA starts. Under tsx the sources are .ts and a worker does not
 * inherit the parent's loader, so it starts from its `<name>-boot.mjs`, which registers tsx; a
 * compiled build has `<name>.js`.
 */
export type CaWorker = "sign-worker" | "ledger-writer";

export function workerEntry(name: CaWorker): URL {
  return import.meta.url.endsWith(".ts") ? new URL(`./${name}-boot.mjs`, import.meta.url) : new URL(`./${name}.js`, import.meta.url);
}
