import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("policy")
    .description("policy (not implemented yet)")
    .action(() => {
      throw Object.assign(new Error("'policy' is not implemented yet"), { exitCode: 2 });
    });
}
