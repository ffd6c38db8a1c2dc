import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("bench")
    .description("bench (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'bench' is not implemented yet"), { exitCode: 2 });
    });
}
