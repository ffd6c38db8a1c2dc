// Only for the sources run through tsx (tests, bench, `npm run cli`; dist/ loads sign-worker.js):
// a worker thread does not get the parent's tsx loader, even under `node --import tsx` on Node 20,
// so it registers tsx itself before loading the TypeScript body.
import { register } from "tsx/esm/api";

register();
await import(new URL("./sign-worker.ts", import.meta.url).href);
