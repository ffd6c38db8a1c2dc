/**
 * The fleet's startup events, spread over a ramp: batches every 20 ms (or one turn after another
 * when there is no ramp), so a large fleet does not announce itself in a single burst.
 */
import { Mode, type SimNode } from "./node.js";

const TICK_MS = 20;

/** resolves once every node still in provisioning mode has been started, or the fleet stopped */
export function publishStartups(nodes: SimNode[], rampMs: number, startNode: (n: SimNode) => void, later: (ms: number, fn: () => void) => void, stopped: () => boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    const ticks = Math.max(1, Math.ceil(rampMs / TICK_MS));
    const perTick = Math.ceil(nodes.length / ticks);
    let next = 0;
    const tick = (): void => {
      if (stopped()) return resolve();
      const end = Math.min(nodes.length, next + perTick);
      for (; next < end; next++) if (nodes[next].mode === Mode.Provisioning) startNode(nodes[next]);
      if (next >= nodes.length) return resolve();
      if (rampMs > 0) later(TICK_MS, tick);
      else setImmediate(tick);
    };
    tick();
  });
}
