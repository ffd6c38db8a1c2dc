import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("demo")
    .description("demo (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'demo' is not implemented yet"), { exitCode: 2 });
    });
}
