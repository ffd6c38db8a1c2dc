import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { inventoryFromFile, InventoryFileError } from "../../src/policy/index.js";

const FIXTURES = "inventories";
const tmp = mkdtempSync(join(tmpdir(), "inv-"));
// replies recorded from a real go-choria server in provisioning mode (test/fixtures/real-choria)
const real = (name: string): any => JSON.parse(readFileSync(`test/fixtures/real-choria/${name}.reply.json`, "utf8")).body.data;
const REAL_INVENTORY = join(tmp, "rpcutil-inventory.data.json");
writeFileSync(REAL_INVENTORY, JSON.stringify(real("rpcutil-inventory"), null, 2));
const provisioningJwt: string = real("choria_provision-jwt").jwt;
// what the reference provisioner hands its helper for that server: identity, csr, ed25519_pubkey,
// the inventory as a JSON string and the provisioning JWT's claims
const HELPER_INPUT = join(tmp, "provisioner-helper-input.json");
writeFileSync(
  HELPER_INPUT,
  JSON.stringify({
    identity: "real-a.fidelity.example.net",
    csr: null,
    ed25519_pubkey: real("choria_provision-gen25519"),
    inventory: JSON.stringify(real("rpcutil-inventory")),
    jwt: JSON.parse(Buffer.from(provisioningJwt.split(".")[1], "base64url").toString()),
  }),
);

describe("inventory files", () => {
  it("reads rpcutil#inventory data as a node returns it, identity from the flag or the file name", () => {
    const inv = inventoryFromFile(REAL_INVENTORY, "n1.example.net");
    assert.equal(inv.identity, "n1.example.net");
    assert.equal(inv.version, "0.30.2");
    assert.equal(inv.upgradable, false);
    assert.equal(inv.mainCollective, "provisioning");
    assert.deepEqual(inv.agents, ["choria_provision", "choria_util", "discovery", "rpcutil"]);
    const file = join(tmp, "web9.example.net.json");
    writeFileSync(file, readFileSync(REAL_INVENTORY));
    assert.equal(inventoryFromFile(file).identity, "web9.example.net");
  });

  it("reads RecordedInventory fixtures with csr and jwt", () => {
    const inv = inventoryFromFile(`${FIXTURES}/web1.example.net.json`);
    assert.equal(inv.identity, "web1.example.net");
    assert.equal(inv.facts.dc, "ams1");
    assert.equal(inv.csr?.cn, "web1.example.net");
    assert.equal(inv.jwt?.purpose, "choria_provisioning");
    assert.equal(inventoryFromFile(`${FIXTURES}/web1.example.net.json`, "other").identity, "other");
  });

  it("reads the legacy helper input and drops the provisioning token", () => {
    const inv = inventoryFromFile(HELPER_INPUT);
    assert.equal(inv.identity, "real-a.fidelity.example.net");
    assert.equal(inv.version, "0.30.2");
    assert.match(String(inv.jwt?.chu), /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(inv.jwt?.cht, undefined);
  });

  it("gives clear errors: missing file, bad JSON with line:col, unrecognised shape", () => {
    assert.throws(() => inventoryFromFile(join(tmp, "missing.json")), (e: unknown) => e instanceof InventoryFileError && /missing\.json: file not found/.test(e.message));
    const bad = join(tmp, "bad.json");
    writeFileSync(bad, '{\n  "agents": ["rpcutil",\n  oops]\n}\n');
    assert.throws(() => inventoryFromFile(bad), (e: unknown) => e instanceof Error && e.message.includes("bad.json:3:3: invalid JSON"));
    writeFileSync(bad, '{"agents": []');
    assert.throws(() => inventoryFromFile(bad), /bad\.json:1:14: invalid JSON: unexpected end of input/);
    writeFileSync(bad, '{"hello": "world"}');
    assert.throws(() => inventoryFromFile(bad), /neither a RecordedInventory nor rpcutil#inventory data/);
  });

  it("every fixture is valid against the RecordedInventory schema", async () => {
    const { readdirSync } = await import("node:fs");
    const ajv = new Ajv({ strict: false, validateFormats: false });
    const validate = ajv.compile(JSON.parse(readFileSync("schemas/recorded-inventory.schema.json", "utf8")));
    for (const f of readdirSync(FIXTURES).filter((x) => x.endsWith(".json"))) {
      assert.ok(validate(JSON.parse(readFileSync(join(FIXTURES, f), "utf8"))), `${f}: ${JSON.stringify(validate.errors)}`);
    }
  });
});
