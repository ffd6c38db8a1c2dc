// Loaded with --import into a bench child after tsx: the product's modules (src/**) are taken
// from dist/, the JavaScript that tsc emits and bin/choria-provisioner runs, so the bench measures
// the code as it ships. tsx keeps function names with a helper that runs each time a closure is
// made, a per-call cost the shipped code does not have (bench/README.md, "What runs").
import { register } from "node:module";

register("./shipped-code-hooks.mjs", import.meta.url);
