import { formatProblem } from "./errors.js";
import type { TestRun } from "./testing.js";

/** `policy test` output formats; all report the same run */
export function reportText(run: TestRun): string {
  const out: string[] = [];
  for (const p of run.problems) out.push(formatProblem(p));
  for (const r of run.results) {
    out.push(`${r.passed ? "PASS" : "FAIL"} ${r.suite} / ${r.name}`);
    if (!r.passed) {
      out.push(`     at ${r.source}`);
      for (const f of r.failures) out.push(`     - ${f}`);
      if (r.explanation) out.push(...r.explanation.split("\n").map((l) => "       " + l));
    }
  }
  const failed = run.results.filter((r) => !r.passed).length;
  out.push(`${run.results.length - failed} passed, ${failed} failed${run.problems.length ? `, ${run.problems.length} problem(s) in policies or tests` : ""}`);
  if (run.coverage) {
    const c = run.coverage;
    out.push(`coverage ${c.percent}%: rules ${c.rules.exercised}/${c.rules.total}, conditions ${c.conditions.exercised}/${c.conditions.total}`);
    for (const m of c.rules.missing) out.push(`  rule never matched: ${m}`);
    for (const m of c.conditions.missing) out.push(`  condition never true: ${m}`);
    for (const p of c.unresolvedPaths) out.push(`  fact path never resolved on a recorded inventory: ${p}`);
  }
  return out.join("\n") + "\n";
}

export function reportJson(run: TestRun): string {
  return (
    JSON.stringify(
      {
        passed: run.results.filter((r) => r.passed).length,
        failed: run.results.filter((r) => !r.passed).length,
        problems: run.problems,
        cases: run.results.map(({ trace: _t, decision, ...r }) => ({ ...r, outcome: decision?.outcome })),
        coverage: run.coverage,
      },
      null,
      2,
    ) + "\n"
  );
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function reportJunit(run: TestRun): string {
  const suites = new Map<string, TestRun["results"]>();
  for (const r of run.results) suites.set(r.suite, [...(suites.get(r.suite) ?? []), r]);
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites tests="${run.results.length}" failures="${run.results.filter((r) => !r.passed).length}" errors="${run.problems.length}">`];
  if (run.problems.length) {
    out.push(`  <testsuite name="policy problems" tests="${run.problems.length}" errors="${run.problems.length}">`);
    for (const p of run.problems) out.push(`    <testcase name="${xml(`${p.file}:${p.line}:${p.col}`)}"><error message="${xml(p.message)}"/></testcase>`);
    out.push("  </testsuite>");
  }
  for (const [name, cases] of suites) {
    out.push(`  <testsuite name="${xml(name)}" tests="${cases.length}" failures="${cases.filter((c) => !c.passed).length}">`);
    for (const c of cases) {
      if (c.passed) out.push(`    <testcase name="${xml(c.name)}" classname="${xml(c.file)}"/>`);
      else out.push(`    <testcase name="${xml(c.name)}" classname="${xml(c.file)}"><failure message="${xml(c.failures[0] ?? "")}">${xml([...c.failures, "", c.explanation ?? ""].join("\n"))}</failure></testcase>`);
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}

export function reportTap(run: TestRun): string {
  const out = ["TAP version 13", `1..${run.results.length + run.problems.length}`];
  let n = 0;
  for (const p of run.problems) out.push(`not ok ${++n} - ${formatProblem(p)}`);
  for (const r of run.results) {
    out.push(`${r.passed ? "ok" : "not ok"} ${++n} - ${r.suite} / ${r.name}`);
    if (!r.passed) {
      out.push("  ---", `  at: ${JSON.stringify(r.source)}`, "  failures:", ...r.failures.map((f) => `    - ${JSON.stringify(f)}`), "  ...");
    }
  }
  return out.join("\n") + "\n";
}
