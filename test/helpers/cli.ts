import { fileURLToPath } from "node:url";

/**
 * node arguments that run the CLI from the sources, so the tests check the code as it is now
 * (bin/ runs dist/, which only a build refreshes; test/cli/package.test.ts checks that build).
 * tsx by URL, so the CLI also starts from a working directory outside the checkout.
 */
export const CLI = ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))];
