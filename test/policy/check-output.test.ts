/** `policy check` names what would be in force: policy name, version, hash and rule count. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { loadPolicySet } from "../../src/policy/index.js";

test("policy check prints each policy's name, version, hash and rule count", async () => {
  const set = await loadPolicySet({ policiesDir: "policies", rulesDir: "rules" });
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "policy", "check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `policy ${set.ref.name} ${set.ref.version} ${set.ref.hash} (${set.rules.length} rules, policies/fleet.yaml)\n`);
  assert.equal(r.stderr, "ok\n");
});
