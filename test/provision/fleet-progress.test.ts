/** A fleet counts as handled when nodes that can never answer (drop fault) have no record. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fleetHandled } from "../../src/provision/fleet-progress.js";
import type { DecisionRecord } from "../../src/types/index.js";

const rec = (identity: string, outcome: DecisionRecord["outcome"]): DecisionRecord => ({ identity, time: "", outcome, reason: "", fired: [], durations: {} });
const fleet = (silent: string[]) => ({
  identities: ["a", "b", "c"],
  report: () => ({ nodes: ["a", "b", "c"].map((identity) => ({ identity, mode: "provisioning" })) }),
  neverAnswers: (id: string) => silent.includes(id),
});

test("a node that never answers is settled without a record, or with an error record", () => {
  assert.equal(fleetHandled([rec("a", "configure"), rec("b", "defer")], fleet(["c"])), true);
  assert.equal(fleetHandled([rec("a", "configure"), rec("b", "defer"), rec("c", "error")], fleet(["c"])), true);
});

test("any other node without a final record keeps the fleet unsettled", () => {
  assert.equal(fleetHandled([rec("a", "configure"), rec("b", "defer")], fleet([])), false);
  assert.equal(fleetHandled([rec("a", "configure"), rec("b", "error")], fleet(["c"])), false, "b is still in provisioning mode");
  const { neverAnswers: _n, ...plain } = fleet(["c"]);
  assert.equal(fleetHandled([rec("a", "configure"), rec("b", "defer")], plain), false, "without the fleet's word, c is waited for");
});
