import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("sim")
    .description("sim (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'sim' is not implemented yet"), { exitCode: 2 });
    });
}
