// Worker threads do not inherit a tsx loader registered through tsx/esm/api in the main thread
// (bin/choria-provisioner.js does that), so the worker registers tsx itself before loading
// the TypeScript body. Under `node --import tsx` this registers a second, harmless instance.
import { register } from "tsx/esm/api";

register();
await import(new URL("./sign-worker.ts", import.meta.url).href);
