import { test } from "node:test";
import assert from "node:assert/strict";
import { childEnv } from "../../src/types/child-env.js";

test("programs we run get the environment without our secrets", () => {
  const env = childEnv({ CHORIA_IDENTITY: "n1" }, { PATH: "/usr/bin", HOME: "/root", CHORIA_PROVISIONER_TOKEN: "t", CHORIA_PROVISIONER_ADMIN_TOKEN: "a", MY_DB_PASSWORD: "p", VAULT_TOKEN: "v", LANG: "C" });
  assert.deepEqual(env, { PATH: "/usr/bin", HOME: "/root", LANG: "C", CHORIA_IDENTITY: "n1" });
});
