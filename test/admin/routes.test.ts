/**
 * Every route in schemas/admin-api.openapi.json, without and with a wrong token: read-only GETs
 * answer without one, every POST is refused (401 with a token configured, 403 without one) and
 * nothing it would do happens. The file must name every route the server answers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startAdminServer, type NodesAction } from "../../src/admin/server.js";
import { createMetrics } from "../../src/metrics/metrics.js";

const spec = JSON.parse(readFileSync(new URL("../../schemas/admin-api.openapi.json", import.meta.url), "utf8")) as { paths: Record<string, Record<string, { security?: unknown[] }>> };

function target() {
  const acted: NodesAction[] = [];
  const t = {
    paused: false,
    acted,
    status: () => ({ ready: true, paused: t.paused }),
    pause: () => void (t.paused = true),
    resume: () => void (t.paused = false),
    nodes: {
      list: () => [{ identity: "n1.example.net", state: "awaiting_approval", since: new Date(0).toISOString() }],
      show: (id: string) => (id === "n1.example.net" ? { identity: id, state: "awaiting_approval", fired: [], timeline: [] } : undefined),
      act: async (a: NodesAction) => {
        acted.push(a);
        return a.identities.map((identity) => ({ identity, result: "done" }));
      },
    },
    clearBrokerSet: (name: string) => {
      acted.push({ action: "clear-broker-set", identities: [name] } as unknown as NodesAction);
      return 1;
    },
    rollout: (action: string) => {
      acted.push({ action: `rollout-${action}`, identities: [] } as unknown as NodesAction);
      return { state: "trusted" };
    },
    ca: {
      crl: () => "-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n",
      revoke: (b: unknown) => {
        acted.push({ action: "revoke", identities: [], body: b } as unknown as NodesAction);
        return [];
      },
    },
  };
  return t;
}

const concrete = (path: string) => path.replace("{identity}", "n1.example.net").replace("{name}", "eu");
const body = JSON.stringify({ identities: ["n1.example.net"], reason: "r" });

test("the OpenAPI file documents the admin routes the server answers", async () => {
  const t = target();
  const a = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t, token: "tok" });
  try {
    for (const path of ["/metrics", "/healthz", "/readyz", "/status", "/pause", "/resume", "/nodes", "/nodes/{identity}", "/nodes/approve", "/nodes/deny", "/nodes/retry", "/nodes/clear", "/nodes/forget", "/ca/crl", "/ca/revoke", "/broker-sets/{name}/clear", "/rollout/accept", "/rollout/revert"]) assert.ok(spec.paths[path], `${path} is documented`);
    for (const path of Object.keys(spec.paths)) {
      for (const method of Object.keys(spec.paths[path]!)) {
        const res = await fetch(a.url + concrete(path), method === "post" ? { method: "POST", headers: { authorization: "Bearer tok" }, body } : {});
        assert.equal(res.status, 200, `${method.toUpperCase()} ${path} answers`);
      }
    }
    assert.equal((await fetch(`${a.url}/nodes/frobnicate`, { method: "POST", headers: { authorization: "Bearer tok" }, body })).status, 404, "an undocumented action is not a route");
  } finally {
    await a.close();
  }
});

for (const [path, methods] of Object.entries(spec.paths)) {
  for (const method of Object.keys(methods)) {
    const guarded = methods[method]!.security === undefined;
    test(`${method.toUpperCase()} ${path}: ${guarded ? "refused without the right token, with no effect" : "read-only, answers without a token"}`, async () => {
      const t = target();
      const a = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t, token: "tok" });
      const open = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t });
      try {
        const url = concrete(path);
        if (!guarded) {
          assert.equal(method, "get", "only GETs are open");
          assert.equal((await fetch(a.url + url)).status, 200);
          const post = await fetch(a.url + url, { method: "POST", body });
          assert.ok(post.status >= 400 && post.status < 500, `POST beside an open GET does nothing (${post.status})`);
          assert.deepEqual(t.acted, []);
          return;
        }
        const tries: Array<Record<string, string>> = [{}, { authorization: "Bearer wrong" }, { authorization: "tok" }, { authorization: "Bearer tok2" }];
        for (const headers of tries) {
          const res = await fetch(a.url + url, { method: "POST", headers, body });
          assert.equal(res.status, 401, `${JSON.stringify(headers)}`);
          assert.match(((await res.json()) as { error: string }).error, /bearer token/);
        }
        assert.equal((await fetch(open.url + url, { method: "POST", headers: { authorization: "Bearer tok" }, body })).status, 403, "no token configured: disabled, not open");
        assert.equal(t.paused, false);
        assert.deepEqual(t.acted, []);
      } finally {
        await a.close();
        await open.close();
      }
    });
  }
}

test("node actions: bad bodies are 400 naming what is wrong; the operator and remote address reach the action", async () => {
  const t = target();
  const a = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t, token: "tok" });
  const post = (path: string, b: string) => fetch(a.url + path, { method: "POST", headers: { authorization: "Bearer tok" }, body: b });
  try {
    for (const [b, msg] of [
      ["not json", /not JSON/],
      ["[1]", /JSON object/],
      ["{}", /name the nodes/],
      ['{"identities":[1]}', /identities must be a list/],
      ['{"identities":["a"],"confirm":"yes"}', /confirm must be true or false/],
      ['{"filter":"x"}', /filter must be an object/],
    ] as const) {
      const res = await post("/nodes/approve", b);
      assert.equal(res.status, 400, b);
      assert.match(((await res.json()) as { error: string }).error, msg);
    }
    assert.equal((await post("/nodes/deny", '{"identities":["a"]}')).status, 400, "deny needs a reason");
    assert.equal((await post("/nodes/approve", '{"identities":["a"],"operator":"erin","confirm":true}')).status, 200);
    assert.deepEqual(t.acted, [{ action: "approve", identities: ["a"], operator: "erin", from: "127.0.0.1", confirm: true }]);
  } finally {
    await a.close();
  }
});

test("a token-guarded endpoint stays on loopback unless admin.allow_remote", async () => {
  const registry = createMetrics("x").registry;
  await assert.rejects(startAdminServer({ listen: "0.0.0.0:0", registry, target: target(), token: "tok" }), /not a loopback address and an admin token is set.*admin\.allow_remote: true/);
  const ok = await startAdminServer({ listen: "0.0.0.0:0", registry, target: target(), token: "tok", allowRemote: true });
  await ok.close();
  const noToken = await startAdminServer({ listen: "0.0.0.0:0", registry, target: target() });
  await noToken.close();
});
