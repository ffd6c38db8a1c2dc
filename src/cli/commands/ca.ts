import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("ca")
    .description("ca (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'ca' is not implemented yet"), { exitCode: 2 });
    });
}
