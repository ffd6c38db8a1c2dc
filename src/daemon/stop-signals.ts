/**
 * SIGINT/SIGTERM for the long-running commands. The first signal starts the command's graceful
 * stop; a second signal, or the stop outlasting `forceAfterMs`, exits at once. Each part's stop has
 * its own deadline (closeNats, the provisioner's drain), and this one is the backstop: whatever
 * still waits on a broker that is gone, or holds the event loop open, cannot keep the process up.
 */
import { constants } from "node:os";

/** the shell's convention for a process ended by a signal: 128 + its number (SIGINT 130, SIGTERM 143) */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** Installs the handlers; the function returned removes them (the backstop, once armed, stays). */
export function onStopSignals(name: string, stop: (signal: NodeJS.Signals) => void, forceAfterMs: number): () => void {
  let first: NodeJS.Signals | undefined;
  const force = (signal: NodeJS.Signals, why: string): void => {
    process.stderr.write(`${name}: ${why}, exiting now\n`);
    process.exit(signalExitCode(signal));
  };
  const on = (signal: NodeJS.Signals): void => {
    if (first) return force(signal, `${signal} while stopping`);
    first = signal;
    // unref: a stop that finishes lets the process end on its own, without waiting for this
    setTimeout(() => force(signal, `still stopping ${forceAfterMs} ms after ${signal}`), forceAfterMs).unref();
    stop(signal);
  };
  process.on("SIGINT", on);
  process.on("SIGTERM", on);
  return () => {
    process.off("SIGINT", on);
    process.off("SIGTERM", on);
  };
}
