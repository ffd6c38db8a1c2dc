/** Per-node claims over a real nats-server with JetStream, on a 1.5 s bucket TTL. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "nats";
import { Claims, claimKey, identityOfClaimKey, openBucket } from "../../src/ha/index.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/local-server.js";
import { connectTo, makeBucket } from "./helpers.js";

const TTL = 1500;
let srv: LocalNatsServer;
let seq = 0;
const conns: NatsConnection[] = [];
const all: Claims[] = [];
const ncOf = new Map<Claims, NatsConnection>();

before(async () => {
  srv = await startNatsServer({ jetstream: true });
});
after(async () => {
  await Promise.all(all.map((c) => c.close()));
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await srv.stop();
});

async function pair(): Promise<[Claims, Claims, string]> {
  const bucket = `CLAIMS_T${++seq}`;
  await makeBucket(srv.url, bucket, TTL);
  const open = async (name: string) => {
    const nc = await connectTo(srv.url);
    conns.push(nc);
    const c = await Claims.open({ nc, name, bucket });
    all.push(c);
    ncOf.set(c, nc);
    return c;
  };
  return [await open("one"), await open("two"), bucket];
}

async function holder(bucket: string, identity: string): Promise<string | undefined> {
  const nc = await connectTo(srv.url);
  try {
    const { kv } = await openBucket(nc, bucket, { ttlMs: TTL });
    const e = await kv.get(claimKey(identity));
    return e?.operation === "PUT" ? e.string() : undefined;
  } finally {
    await nc.close();
  }
}

/** polls the claim with one instance until it wins; returns how long that took */
async function claimWhenFree(c: Claims, identity: string, limitMs: number): Promise<number> {
  const t0 = performance.now();
  // a KV key's expiry produces no event on nats-server 2.9: polling is the only way to see it
  while (!(await c.claim(identity))) {
    if (performance.now() - t0 > limitMs) throw new Error(`${identity} still claimed after ${limitMs}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - t0;
}

describe("claims", { timeout: 30_000 }, () => {
  test("identities map to valid, reversible KV keys", async () => {
    for (const id of ["node1.example.net", "a=b.c", "x_y-z", "ünï.example", "dc1/rack.2"]) {
      const k = claimKey(id);
      assert.match(k, /^[-_=a-zA-Z0-9]+$/);
      assert.equal(identityOfClaimKey(k), id);
    }
    assert.equal(claimKey("node1.example.net"), "node1=2Eexample=2Enet");
    assert.notEqual(claimKey("a.b"), claimKey("a_b"));
  });

  test("only one instance wins a node, even when both ask at once", async () => {
    const [a, b, bucket] = await pair();
    const ids = Array.from({ length: 50 }, (_, i) => `n${i}.example.net`);
    const results = await Promise.all(ids.flatMap((id) => [a.claim(id).then((ok) => ({ id, who: "one", ok })), b.claim(id).then((ok) => ({ id, who: "two", ok }))]));
    for (const id of ids) {
      const winners = results.filter((r) => r.id === id && r.ok);
      assert.equal(winners.length, 1, `${id}: ${JSON.stringify(winners)}`);
      assert.equal(await holder(bucket, id), winners[0].who);
    }
    assert.equal(a.status().won + b.status().won, 50);
    assert.equal(a.status().refused + b.status().refused, 50);
  });

  test("after a defer or error the claim is deleted so another instance retries at once", async () => {
    const [a, b, bucket] = await pair();
    assert.equal(await a.claim("d.example.net"), true);
    assert.equal(await b.claim("d.example.net"), false);
    await a.release("d.example.net", "defer");
    assert.equal(await holder(bucket, "d.example.net"), undefined);
    assert.equal(await b.claim("d.example.net"), true);
  });

  test("after configure the claim is kept until it expires; its owner may reuse it", async () => {
    const [a, b] = await pair();
    assert.equal(await a.claim("c.example.net"), true);
    await a.release("c.example.net", "configure");
    assert.equal(await b.claim("c.example.net"), false, "others stay off a restarting node");
    assert.equal(await a.claim("c.example.net"), true, "the owner takes its own kept claim back");
    await a.release("c.example.net", "configure");
    const waited = await claimWhenFree(b, "c.example.net", 3 * TTL);
    console.log(`kept claim expired after ${waited.toFixed(0)} ms (TTL ${TTL} ms)`);
    assert.ok(waited >= TTL - 300 && waited <= TTL + 1500, `waited ${waited}ms`);
  });

  test("a claim in flight is renewed past the TTL; a dropped one is taken over after the TTL", async () => {
    const [a, b, bucket] = await pair();
    assert.equal(await a.claim("slow.example.net"), true);
    // 2 x TTL with a still working on the node: renewals keep it
    await new Promise((r) => setTimeout(r, 2 * TTL));
    assert.equal(await b.claim("slow.example.net"), false);
    assert.equal(await holder(bucket, "slow.example.net"), "one");
    // a "crashes": its connection goes away without releasing anything
    await ncOf.get(a)!.close();
    const waited = await claimWhenFree(b, "slow.example.net", 4 * TTL);
    console.log(`crashed instance's claim taken over after ${waited.toFixed(0)} ms (TTL ${TTL} ms)`);
    assert.ok(waited <= TTL + 1500, `waited ${waited}ms`);
    assert.equal(await holder(bucket, "slow.example.net"), "two");
  });

  test("close deletes the claims of nodes still in flight", async () => {
    const [a, b] = await pair();
    assert.equal(await a.claim("f.example.net"), true);
    await a.close();
    assert.equal(await b.claim("f.example.net"), true);
    assert.equal(await a.claim("g.example.net"), false, "a closed instance claims nothing");
  });
});
