/**
 * The fleet's NATS connections: each carries one queue-grouped provisioning.node.> wildcard
 * (every directed request arrives once, on any connection, and is routed by identity) plus the
 * broadcast agent subjects (each connection answers for its own share of nodes).
 */
import { randomBytes } from "node:crypto";
import { headers, type NatsConnection, type Subscription } from "nats";
import { broadcastSubject, nodeSubject } from "../protocol/index.js";
import { closeNats, connectNats } from "../transport/connection.js";
import { endOfTurnPublisher } from "../transport/publish-batch.js";
import type { Dispatcher } from "./dispatcher.js";
import type { SimNode } from "./node.js";
import { LOADED_AGENTS } from "./runtime.js";

export interface Shard {
  nc: NatsConnection;
  nodes: SimNode[];
  server: string;
  subs: Subscription[];
}

const NODE_PREFIX = nodeSubject("");

/** one connection per shard; node i belongs to shard i % shards */
export async function connectShards(servers: string[], count: number): Promise<Shard[]> {
  const ncs = await Promise.all(Array.from({ length: count }, (_, i) => connectNats({ servers, name: `choria-sim-${i}` })));
  return ncs.map((nc) => ({ nc, nodes: [], server: `nats://${nc.getServer()}`, subs: [] }));
}

/**
 * What the fleet sends in one turn goes out together (see transport/publish-batch.ts); a shard
 * draining or closed by stop() meanwhile drops its messages, as a stopped server's would.
 */
export function shardPublisher(shards: Shard[]): (node: SimNode, subject: string, bytes: Uint8Array | string) => void {
  const publishSoon = endOfTurnPublisher();
  return (node, subject, bytes) => {
    const nc = shards[node.shard].nc;
    publishSoon(nc, subject, bytes, (e) => {
      if (!nc.isClosed() && !nc.isDraining()) throw e;
    });
  };
}

/** subscribes every shard and resolves once the broker has the subscriptions */
export async function subscribeShards(shards: Shard[], dispatcher: Dispatcher, noResponders: boolean): Promise<void> {
  // every connection joins the same queue group, so each directed request is handled once
  const queue = `choria-sim-${randomBytes(6).toString("hex")}`;
  shards.forEach((shard, i) => {
    shard.subs.push(
      shard.nc.subscribe(`${NODE_PREFIX}>`, {
        queue,
        callback: (err, msg) => {
          if (err) return;
          // the fleet shares one wildcard subscription, so the broker cannot know a node is
          // absent: answer as it would for a subject nobody is subscribed to (503 no responders)
          if (!dispatcher.directed(msg.subject.slice(NODE_PREFIX.length), msg.data) && noResponders && msg.reply) shard.nc.publish(msg.reply, new Uint8Array(0), { headers: headers(503, "No Responders") });
        },
      }),
    );
    for (const agent of LOADED_AGENTS) {
      shard.subs.push(
        shard.nc.subscribe(broadcastSubject(agent), {
          callback: (err, msg) => {
            if (!err) dispatcher.broadcast(shard.nodes, msg.data, i === 0);
          },
        }),
      );
    }
  });
  await Promise.all(shards.map((s) => s.nc.flush()));
}

/**
 * Resolves once everything published so far has reached the broker: publishes wait for the end
 * of the turn (publish-batch.ts), so a setImmediate queued now runs after that batch went into
 * the connections' buffers, and a flush round trip then proves the broker has it.
 */
export async function flushShards(shards: Shard[]): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  await Promise.all(shards.filter((s) => !s.nc.isClosed() && !s.nc.isDraining()).map((s) => s.nc.flush()));
}

export async function closeShards(shards: Shard[]): Promise<void> {
  await Promise.all(shards.map((s) => closeNats(s.nc)));
}
