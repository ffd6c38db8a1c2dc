import { registerCommands } from "./commands/index.js";
import { VERSION } from "../daemon/version.js";
import { CliCommand } from "./command.js";

const program = new CliCommand();
program
  .name("choria-provisioner")
  .description("Policy-driven provisioner for Choria servers")
  .version(VERSION)
  .showHelpAfterError();

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error & { exitCode?: number };
  process.stderr.write(`choria-provisioner: ${e?.message ?? String(err)}\n`);
  process.exit(typeof e?.exitCode === "number" ? e.exitCode : 2);
});
