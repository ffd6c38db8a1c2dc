/**
 * Credentials on real go-choria servers: features.jwt with provisioning JWTs made and signed by
 * `choria jwt keys` / `choria jwt prov`, and the ed25519 / server-JWT flow.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon } from "../helpers/daemon.js";
import { EventWatch, REAL_SKIP, RealLab, TOKEN, homePolicy } from "../helpers/real-choria.js";

const labs: RealLab[] = [];
after(async () => {
  for (const l of labs) await l.stop();
});

async function lab(): Promise<RealLab> {
  const l = await RealLab.start();
  labs.push(l);
  return l;
}

test("features.jwt: a server whose JWT verifies is provisioned home; one signed by another key is refused and left alone", { skip: REAL_SKIP }, async () => {
  const l = await lab();
  const home = await EventWatch.open(await l.homeConnection());
  l.onStop(() => home.close());
  // a second signer the daemon does not trust
  const rogueSeed = join(l.root, "rogue.seed");
  await l.choria(["jwt", "keys", rogueSeed, join(l.root, "rogue.public")]);
  const rogueJwt = join(l.root, "rogue.jwt");
  await l.choria(["jwt", "prov", rogueJwt, rogueSeed, "--token", TOKEN, "--urls", l.provisioning.url]);

  const pol = l.writePolicy("lab", homePolicy(l));
  const daemon = await startTestDaemon(l.provisioning.url, { ...(await l.daemonBroker()), ...pol, ca: { dir: l.caDir }, features: { pki: true, jwt: true }, jwt_verify_cert: l.provPublicHex }, {}, { CHORIA_PROVISIONER_TOKEN: TOKEN });
  l.onStop(() => daemon.stop(5000));

  const good = l.startServer("good.real.example.net");
  const rogue = l.startServer("rogue.real.example.net", { jwt: rogueJwt });
  await home.until((w) => w.identities("startup", "server").has(good.identity), 60_000, "the good server at home");
  const recs = await daemon.waitFor((r) => r.some((x) => x.identity === rogue.identity), 30_000, "a record for the rogue server");
  const rec = recs.find((x) => x.identity === rogue.identity)!;
  assert.notEqual(rec.outcome, "configure");
  assert.match(rec.reason, /jwt|JWT|signature/);
  assert.match(readFileSync(join(rogue.dir, "server.conf"), "utf8"), /plugin\.choria\.server\.provision = true/, "the rogue server is still unconfigured");
  assert.equal(home.identities("startup", "server").has(rogue.identity), false);
});

test("features.ed25519: a real server generates its ed25519 key, and receives a server JWT signed by us for that key", { skip: REAL_SKIP }, async () => {
  const l = await lab();
  const signerSeed = join(l.root, "issuer.seed");
  const signerPublic = join(l.root, "issuer.public");
  await l.choria(["jwt", "keys", signerSeed, signerPublic]);
  const pol = l.writePolicy("lab", homePolicy(l));
  const daemon = await startTestDaemon(
    l.provisioning.url,
    { ...(await l.daemonBroker()), ...pol, features: { pki: false, jwt: true, ed25519: true }, jwt_verify_cert: l.provPublicHex, jwt_signing_key: signerSeed },
    {},
    { CHORIA_PROVISIONER_TOKEN: TOKEN },
  );
  l.onStop(() => daemon.stop(5000));
  const s = l.startServer("ed.real.example.net");
  const recs = await daemon.waitFor((r) => r.some((x) => x.identity === s.identity), 30_000, "a record for the ed25519 node");
  const rec = recs.find((x) => x.identity === s.identity)!;
  assert.equal(rec.outcome, "configure", rec.reason);

  // the server wrote the JWT we sent beside its configuration, and its own seed
  const jwt = readFileSync(join(s.dir, "server.jwt"), "utf8").trim();
  const [h, p, sig] = jwt.split(".");
  const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as { identity?: string; sub?: string; public_key?: string; purpose?: string };
  assert.equal(claims.purpose, "choria_server");
  assert.equal(claims.identity ?? claims.sub, s.identity);
  const issuerRaw = Buffer.from(readFileSync(signerPublic, "utf8").trim(), "hex");
  const issuerKey = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), issuerRaw]), format: "der", type: "spki" });
  assert.ok(verify(null, Buffer.from(`${h}.${p}`), issuerKey, Buffer.from(sig!, "base64url")), "the server JWT is signed by our issuer key");
  // the JWT binds the key the server generated: its public_key is the seed's public half
  const seed = Buffer.from(readFileSync(join(s.dir, "server.seed"), "utf8").trim(), "hex");
  const { createPrivateKey } = await import("node:crypto");
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), format: "der", type: "pkcs8" });
  const pubRaw = (createPublicKey(priv).export({ format: "der", type: "spki" }) as Buffer).subarray(12);
  assert.equal(claims.public_key, pubRaw.toString("hex"));
});
