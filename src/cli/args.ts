/**
 * The one commander argument parser for numbers and durations. A bad value stops the command
 * with commander's "option '--x <n>' argument 'y' is invalid. <why>" and exit code 2, like every
 * other usage error.
 */
import { InvalidArgumentError } from "commander";
import { parseDuration } from "../config/index.js";

function invalid(why: string): InvalidArgumentError {
  const e = new InvalidArgumentError(why);
  e.exitCode = 2;
  return e;
}

/** A number from min to max (inclusive); an integer unless `integer: false`. */
export function numberArg(o: { min?: number; max?: number; integer?: boolean } = {}): (v: string) => number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true } = o;
  const what = `${integer ? "an integer" : "a number"} ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`;
  return (v) => {
    const n = v.trim() === "" ? NaN : Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) throw invalid(`It must be ${what}.`);
    return n;
  };
}

/** A duration such as 500ms, 10s, 5m, 1h, or milliseconds: the value in milliseconds. */
export function durationArg(v: string): number {
  if (/^\d+$/.test(v.trim())) return Number(v);
  try {
    return parseDuration(v);
  } catch {
    throw invalid("It must be a duration such as 500ms, 10s, 5m, 1h, or a number of milliseconds.");
  }
}
