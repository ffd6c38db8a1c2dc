// Module resolution hook for bench/shipped-code.mjs: a resolved URL under src/ becomes its
// counterpart under dist/ (tsx has already mapped ".js" specifiers to the ".ts" sources).
const SRC = new URL("../src/", import.meta.url).href;
const DIST = new URL("../dist/", import.meta.url).href;

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!r.url.startsWith(SRC)) return r;
  const rest = r.url.slice(SRC.length).replace(/\.ts$/, ".js");
  return { ...r, url: DIST + rest, format: rest.endsWith(".mjs") || rest.endsWith(".js") ? "module" : r.format };
}
