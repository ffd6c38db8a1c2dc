// Only for the sources run through tsx (see sign-worker-boot.mjs): the worker registers tsx itself.
import { register } from "tsx/esm/api";

register();
await import(new URL("./ledger-writer.ts", import.meta.url).href);
