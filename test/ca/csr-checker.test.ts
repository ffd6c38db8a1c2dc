import { test } from "node:test";
import assert from "node:assert/strict";
import { csrChecker } from "../../src/ca/index.js";
import { checkCsr } from "../../src/ca/index.js";
import { makeCsr } from "./csr-fixtures.js";

test("the daemon's CSR checker parses once and decides exactly as checkCsr does", async () => {
  const c = csrChecker(["\\.internal$"]);
  const cases = [
    { csr: await makeCsr({ cn: "n1.example.net" }), identity: "n1.example.net", sans: [] as string[] },
    { csr: await makeCsr({ cn: "n1.example.net", dns: ["n1.example.net", "web.example.net"] }), identity: "n1.example.net", sans: ["web.example.net"] },
    { csr: await makeCsr({ cn: "n1.example.net", dns: ["web.example.net"] }), identity: "n1.example.net", sans: [] },
    { csr: await makeCsr({ cn: "other.example.net" }), identity: "n1.example.net", sans: [] },
    { csr: await makeCsr({ cn: "db.INTERNAL" }), identity: "db.INTERNAL", sans: [] },
  ];
  const outcomes: string[] = [];
  for (const k of cases) {
    const inspected = c.inspect(k.csr);
    assert.equal(inspected.ok, true);
    const viaParse = c.check(k.csr, k.identity, k.sans, inspected.ok ? inspected.parsed : undefined);
    const direct = c.check(k.csr, k.identity, k.sans);
    const reference = checkCsr(k.csr, { identity: k.identity, allowedSans: k.sans, denyPatterns: [/\.internal$/i] });
    assert.deepEqual(viaParse, direct);
    assert.deepEqual(direct, reference);
    outcomes.push(viaParse.ok ? "ok" : viaParse.code);
  }
  assert.deepEqual(outcomes, ["ok", "ok", "san_not_allowed", "cn_mismatch", "denied_name"], "custom deny patterns are case-insensitive");
  const bad = c.inspect("not a csr");
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.code, "not_pem");
});
