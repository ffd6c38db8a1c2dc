/** The discoveries after a broker reconnect (intake.ts rediscoverAfter), on a mocked clock. */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Intake, type IntakeHooks, type IntakeOptions } from "../../src/provision/intake.js";

function countingIntake(o: Partial<IntakeOptions> = {}): { intake: Intake; cycles: () => number } {
  let cycles = 0;
  const hooks: IntakeHooks = { offer: () => "queued", active: () => true, invalid: () => {}, discoveryCycle: () => {}, discoveryError: () => {}, duplicate: () => {} };
  // start() is never called: what is tested here does not use the broker connection
  const intake = new Intake({} as never, { discover: async () => (cycles++, []) }, hooks, {
    lifecycleComponent: "provision_mode_server",
    registration: false,
    legacyRegistration: false,
    discoveryIntervalMs: 60_000,
    discoveryTimeoutMs: 100,
    discoveryQuietMs: 50,
    discoverAtStart: true,
    ...o,
  });
  return { intake, cycles: () => cycles };
}

/** moves the mocked clock, then lets a discovery cycle started by a timer run its promise chain */
async function tick(t: TestContext, ms: number): Promise<void> {
  t.mock.timers.tick(ms);
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

test("after a reconnect: one discovery at each delay; a second reconnect replaces the first's; stop cancels them", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { intake, cycles } = countingIntake();
  intake.rediscoverAfter([3000, 30_000]);
  await tick(t, 2999);
  assert.equal(cycles(), 0, "not before the first delay");
  await tick(t, 1);
  assert.equal(cycles(), 1, "at 3 s");
  // the link drops and comes back at 10 s: its discoveries are due at 13 s and 40 s, none at 30 s
  await tick(t, 7000);
  intake.rediscoverAfter([3000, 30_000]);
  await tick(t, 3000);
  assert.equal(cycles(), 2, "3 s after the second return");
  await tick(t, 17_000);
  assert.equal(cycles(), 2, "the first return's 30 s discovery was replaced");
  await tick(t, 10_000);
  assert.equal(cycles(), 3, "30 s after the second return");
  intake.rediscoverAfter([3000, 30_000]);
  await intake.stop();
  await tick(t, 60_000);
  assert.equal(cycles(), 3, "nothing after stop");
});

test("with discovery off, a reconnect runs none", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { intake, cycles } = countingIntake({ discoveryIntervalMs: 0, discoverAtStart: false });
  intake.rediscoverAfter([3000, 30_000]);
  await tick(t, 60_000);
  assert.equal(cycles(), 0);
});
