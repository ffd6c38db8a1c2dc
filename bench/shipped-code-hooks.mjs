// Module resolution hook for bench/shipped-code.mjs: a resolved URL under src/ becomes its
// counterpart under dist/ (tsx has already mapped ".js" specifiers to the ".ts" sources).
// CHORIA_BENCH_DIST names another build of src/ at the same depth (e.g. dist-a/), for A/B runs
// of two versions of the code in one bench process.
import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";

const SRC = new URL("../src/", import.meta.url).href;
const DIST = process.env.CHORIA_BENCH_DIST ? pathToFileURL(resolvePath(process.env.CHORIA_BENCH_DIST) + "/").href : new URL("../dist/", import.meta.url).href;

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!r.url.startsWith(SRC)) return r;
  // src/ holds only .ts and .mjs modules; tsc emits both as ES modules
  return { ...r, url: DIST + r.url.slice(SRC.length).replace(/\.ts$/, ".js"), format: "module" };
}
