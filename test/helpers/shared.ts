/** The project's shared spec lives beside the repository (../shared), in CI too. */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const SHARED_SPEC = fileURLToPath(new URL("../../../shared/spec/", import.meta.url));

export function specPath(...parts: string[]): string {
  return join(SHARED_SPEC, ...parts);
}

export function loadSpecJson<T = any>(...parts: string[]): T {
  return JSON.parse(readFileSync(specPath(...parts), "utf8")) as T;
}

export function listSpec(dir: string): string[] {
  return readdirSync(specPath(dir)).filter((f) => f.endsWith(".json")).sort();
}
