/** Errors of the built-in CA's own operations (the signing contract's errors live in types/). */

/** `initBuiltinCa` without `force` on a directory that already holds a CA */
export class CaExistsError extends Error {
  constructor(
    readonly dir: string,
    readonly file: string,
  ) {
    super(`a CA already exists in ${dir} (${file})`);
  }
}
