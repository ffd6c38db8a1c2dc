import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("run")
    .description("run (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'run' is not implemented yet"), { exitCode: 2 });
    });
}
