import assert from "node:assert/strict";
import { describe, it } from "node:test";
import semver from "semver";
import { OPERATORS } from "../../src/policy/operators.js";

describe("operators", () => {
  it("semver: parsing each version string once gives what parsing it on every test gives", () => {
    const op = OPERATORS.get("semver")!;
    // the definition: loose parse, else coerce (Choria's 4-part versions), then Range.test
    const direct = (f: string, r: string) => {
      const v = semver.valid(f, { loose: true }) ?? semver.coerce(f)?.version;
      return v !== undefined && v !== null && new semver.Range(r, { loose: true }).test(v);
    };
    const versions = ["0.28.0", "v0.29.4", "=0.29.4", "0.99.0.20221129", "1.2.3-beta.1", "1.2.3-beta.1+build", "1.2", "1", "", "weird", " 0.26.1 ", "2.0.0-0", "01.2.3"];
    const ranges = [">= 0.26.0", "< 0.29.0", "^1.2", "~0.29", "*", ">=1.2.3-alpha", "1.x", "1.2.3 - 2.3.4", "=1.2.3-beta.1", "^2.0.0-0"];
    for (let round = 0; round < 2; round++) {
      for (const f of versions) for (const r of ranges) assert.equal(op.evaluate!(f, r), direct(f, r), `${JSON.stringify(f)} ${r} (round ${round})`);
    }
    assert.equal(op.evaluate!(29, ">= 0.1.0"), false);
  });
});
