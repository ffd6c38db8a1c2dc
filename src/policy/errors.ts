/** One problem found while loading a policy set, pointing at the exact spot in a file. */
export interface PolicyProblem {
  file: string;
  line: number;
  col: number;
  rule?: string;
  message: string;
}

/** Thrown by loadPolicySet with every problem found, never just the first one. */
export class PolicyLoadError extends Error {
  problems: PolicyProblem[];

  constructor(problems: PolicyProblem[]) {
    const sorted = sortProblems(problems);
    super(`policy set has ${sorted.length} problem${sorted.length === 1 ? "" : "s"}:\n` + sorted.map(formatProblem).join("\n"));
    this.name = "PolicyLoadError";
    this.problems = sorted;
  }
}

/** `file:line:col: rule: message`, the format `policy check` prints and editors can jump to. */
export function formatProblem(p: PolicyProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.rule ? p.rule + ": " : ""}${p.message}`;
}

export function sortProblems(problems: PolicyProblem[]): PolicyProblem[] {
  return [...problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col || (a.message < b.message ? -1 : 1)));
}
