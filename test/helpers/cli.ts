import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * node arguments that run the CLI from the sources, so the tests check the code as it is now
 * (bin/ runs dist/, which only a build refreshes; test/cli/package.test.ts checks that build).
 * tsx by URL, so the CLI also starts from a working directory outside the checkout.
 */
export const CLI = ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))];

/**
 * Runs the CLI from the sources with tsx in its execArgv only (NODE_OPTIONS emptied): sign
 * workers do not inherit that loader, which is where they used to lose it
 * (src/ca/sign-worker-boot.mjs).
 */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
