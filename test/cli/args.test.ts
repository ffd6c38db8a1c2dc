/** The one argument parser: what it accepts, and commander's usage error with exit code 2 for the rest. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { durationArg, numberArg } from "../../src/cli/args.js";

function parse(args: string[]): { opts: Record<string, unknown>; error?: { exitCode: number; message: string } } {
  const p = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  p.option("--workers <n>", "", numberArg({ min: 1 })).option("--threshold <p>", "", numberArg({ max: 100, integer: false })).option("--interval <d>", "", durationArg);
  try {
    p.parse(args, { from: "user" });
    return { opts: p.opts() };
  } catch (e) {
    return { opts: {}, error: e as { exitCode: number; message: string } };
  }
}

test("integers, numbers and durations are parsed once, by one parser", () => {
  assert.deepEqual(parse(["--workers", "8", "--threshold", "92.5", "--interval", "5m"]).opts, { workers: 8, threshold: 92.5, interval: 300_000 });
  assert.equal(parse(["--interval", "1500"]).opts.interval, 1500);
});

test("a bad value is a usage error naming the option and what it must be", () => {
  for (const [args, why] of [
    [["--workers", "0"], /option '--workers <n>' argument '0' is invalid\. It must be an integer >= 1\./],
    [["--workers", "2.5"], /must be an integer >= 1/],
    [["--threshold", "101"], /must be a number from 0 to 100/],
    [["--interval", "soon"], /argument 'soon' is invalid\. It must be a duration/],
  ] as const) {
    const r = parse([...args]);
    assert.equal(r.error?.exitCode, 2, String(args));
    assert.match(r.error!.message, why);
  }
});
