/**
 * Worker slots for nodes that answered. A node's first request only asks whether it is there
 * (an absent node costs the broker's no-responders round trip); it takes a slot once it has
 * answered, so a flood of announcements for servers that do not exist cannot hold the workers.
 */
import { RpcCancelledError } from "../transport/errors.js";
import type { RpcCaller } from "./interfaces.js";

export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`slots must be a positive integer, got ${size}`);
    this.free = size;
  }

  get inUse(): number {
    return this.size - this.free;
  }

  /** resolves with a slot, or rejects with RpcCancelledError when `signal` aborts first */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new RpcCancelledError("waiting for a worker slot"));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new RpcCancelledError("waiting for a worker slot"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * The node's RPC caller: passes calls through, and before handing back the node's first reply
 * takes a slot (once). `held()` says whether it holds one, to release when the node is done.
 */
export function slotAfterFirstReply(rpc: RpcCaller, slots: Slots, onSlot?: () => void): RpcCaller & { held(): boolean } {
  let held = false;
  const first = async <T>(identity: string, agent: string, action: string, data?: Record<string, unknown>, o?: Parameters<RpcCaller["call"]>[4]) => {
    const r = await rpc.call<T>(identity, agent, action, data, o);
    if (!held) {
      await slots.acquire(o?.signal);
      held = true;
      onSlot?.();
    }
    return r;
  };
  return {
    held: () => held,
    // once the slot is held, the node's calls go straight to the client: no wrapper promise per request
    call: <T = Record<string, unknown>>(identity: string, agent: string, action: string, data?: Record<string, unknown>, o?: Parameters<RpcCaller["call"]>[4]) => (held ? rpc.call<T>(identity, agent, action, data, o) : first<T>(identity, agent, action, data, o)),
  };
}
