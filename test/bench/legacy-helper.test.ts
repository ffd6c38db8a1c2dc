import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "../../bench/e2e.js";
import { systemPython } from "../../bench/reference.js";

// bench/legacy-helper.py, helper (a) of the reference benches: the seed decision, and with --home
// the configuration that brings a real go-choria server home (bench/real-servers.ts)
function helper(args: string[], req: unknown): { configuration: Record<string, string>; certificate: string } {
  return JSON.parse(execFileSync(systemPython(), [join(REPO, "bench/legacy-helper.py"), ...args], { input: JSON.stringify(req), encoding: "utf8" }));
}

const req = { identity: "n1.example.net", inventory: JSON.stringify({ facts: { country: "nl" } }), csr: { csr: "", ssldir: "/srv/n1.example.net/ssl" } };

test("without --home the helper answers the seed decision: brokers by country, /etc paths", () => {
  const c = helper([], req).configuration;
  assert.equal(c["plugin.choria.middleware_hosts"], "nats://broker-nl.choria.local:4222");
  assert.equal(c["plugin.security.file.certificate"], "/etc/choria/ssl/certificate.pem");
});

test("with --home the node goes to that broker with its files under the ssldir it reported", () => {
  const c = helper(["--home", "nats://127.0.0.1:4999"], req).configuration;
  assert.equal(c.identity, "n1.example.net");
  assert.equal(c["plugin.choria.server.provision"], "false");
  assert.equal(c["plugin.choria.middleware_hosts"], "nats://127.0.0.1:4999");
  assert.equal(c["plugin.security.file.certificate"], "/srv/n1.example.net/ssl/certificate.pem");
  assert.equal(c["plugin.security.file.key"], "/srv/n1.example.net/ssl/private.pem");
  assert.equal(c["plugin.security.file.ca"], "/srv/n1.example.net/ssl/ca.pem");
  // nothing of the node's own lands outside its directory
  const outside = Object.entries(c).filter(([, v]) => v.startsWith("/") && !v.startsWith("/srv/n1.example.net/"));
  assert.deepEqual(outside, []);
});
