#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm run build`; `npm pack` builds it through `prepack`,
// `npm run bench` before it measures). No TypeScript loader in production: from a checkout, `npm run cli --` runs src/ through tsx.
import { existsSync } from "node:fs";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`choria-provisioner: ${main.pathname} is missing; in a checkout run \`npm run build\` (or \`npm run cli -- ...\` to run the sources)\n`);
  process.exit(2);
}
await import(main.href);
