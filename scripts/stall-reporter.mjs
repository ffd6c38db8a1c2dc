// A node:test reporter beside the spec one (scripts/run-tests.mjs): it writes, as JSON, which test
// files timed out before reporting a single test (the process stalled before its first test ran:
// module loading through the tsx loader) and how many other failures there were. run-tests.mjs
// runs such files once more; a failure of any other kind is never run again.
export default async function* stallReporter(source) {
  const reported = new Set(); // files with at least one test of their own reported
  const timedOut = new Set(); // files whose own process timed out
  let otherFailures = 0;
  for await (const e of source) {
    if (e.type !== "test:pass" && e.type !== "test:fail") continue;
    const { name, file, nesting, details } = e.data;
    const isFile = nesting === 0 && file !== undefined && name === file;
    if (!isFile) {
      if (file !== undefined) reported.add(file);
      if (e.type === "test:fail") otherFailures++;
      continue;
    }
    if (e.type !== "test:fail") continue;
    if (details?.error?.failureType === "testTimeoutFailure") timedOut.add(file);
    else otherFailures++;
  }
  const stalled = [...timedOut].filter((f) => !reported.has(f));
  // a file that timed out after some of its tests ran hung in a test: that is a failure like any other
  otherFailures += timedOut.size - stalled.length;
  yield JSON.stringify({ stalled, otherFailures }) + "\n";
}
