import type { Command } from "commander";
import { register as ca } from "./ca.js";
import { register as demo } from "./demo.js";
import { register as nodes } from "./nodes.js";
import { register as policy } from "./policy.js";
import { register as run } from "./run.js";
import { register as sim } from "./sim.js";

/** Each command lives in its own file exporting `register(program)`; this is the order `--help` lists them in. */
export function registerCommands(program: Command): void {
  for (const r of [run, nodes, policy, ca, sim, demo]) r(program);
}
