/**
 * Publishes made during one event-loop turn go out together, in order, at its end, or as soon as
 * `maxBatch` of them are waiting.
 *
 * Why batch: nats.js writes its buffer to the socket once per microtask checkpoint, and work
 * resumed by one chunk of incoming messages publishes across many checkpoints: unbatched, that is
 * one write (and one wake-up of nats-server) per message instead of one per turn. In
 * `npm run bench` batching took about 15% (the provisioner's RpcClient) and 27% (the simulated
 * fleet) off nats-server's CPU.
 *
 * Why cap the batch: one poll phase can read many socket chunks (libuv reads a stream up to 32
 * times before moving on), and holding every resulting publish until the phase ends turns two
 * busy processes into a ping-pong: each waits idle while the other works through a whole burst.
 * Releasing every `maxBatch` messages lets the other side start while this one is still
 * reading. In `npm run bench` (20k nodes) the cap of 32 took the machine's idle time from 16–17%
 * to 9–10% and end-to-end throughput up by 8% (three alternating pairs).
 *
 * Retire it when nats.js coalesces a turn's publishes into one socket write itself: its flush
 * scheduling is discussed upstream in https://github.com/nats-io/nats.node/issues/581; its
 * guards are in test/transport/rpc-client.test.ts.
 */
import type { NatsConnection } from "nats";

/**
 * Queues a publish on `nc` for the end of this turn; `onError` gets what publish throws then.
 * `reply` sets the NATS reply subject, so the broker answers a subject nobody listens on with a
 * 503 no-responders status there.
 */
export type DeferredPublish = (nc: NatsConnection, subject: string, data: Uint8Array | string, onError: (e: Error) => void, reply?: string) => void;

export const DEFAULT_MAX_BATCH = 32;

export function endOfTurnPublisher(maxBatch: number = DEFAULT_MAX_BATCH): DeferredPublish {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  let pending: Array<{ nc: NatsConnection; subject: string; data: Uint8Array | string; onError: (e: Error) => void; reply?: string }> = [];
  let scheduled = false;
  const flush = (): void => {
    const batch = pending;
    pending = [];
    for (const m of batch) {
      try {
        m.nc.publish(m.subject, m.data, m.reply === undefined ? undefined : { reply: m.reply });
      } catch (e) {
        m.onError(e as Error);
      }
    }
  };
  const endOfTurn = (): void => {
    scheduled = false;
    flush();
  };
  return (nc, subject, data, onError, reply) => {
    if (pending.push({ nc, subject, data, onError, reply }) >= maxBatch) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(endOfTurn);
    }
  };
}
