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

// `policy eval --inventories dir | head`: a reader that stops early is not an error
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error & { exitCode?: number };
  process.stderr.write(`choria-provisioner: ${e?.message ?? String(err)}\n`);
  process.exit(typeof e?.exitCode === "number" ? e.exitCode : 2);
});
