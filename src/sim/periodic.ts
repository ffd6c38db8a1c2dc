/**
 * The messages a provisioning-mode server sends on its own: registration data (first after
 * 1–4 s, then every interval) and alive lifecycle events (first within firstWithinMs of its
 * startup, then every interval). One sweep serves every node, because a timer per node would
 * cost 100k timers; they are due at ms resolution and sent at 250.
 */
import { LEGACY_REGISTRATION_SUBJECT, REGISTRATION_SUBJECT, encodeRegistration } from "../protocol/index.js";
import { Mode, type SimNode } from "./node.js";
import { rngFor } from "./prng.js";
import { encodeWithRaw } from "./raw-json.js";
import type { SimRuntime } from "./runtime.js";

export interface PeriodicOptions {
  registration?: boolean | { intervalMs: number };
  legacyRegistration?: boolean;
  alive?: boolean | { intervalMs: number; firstWithinMs?: number };
  protocol: 1 | 2;
  provisioningJwt?: string;
}

const ALIVE_INTERVAL = 30 * 60_000;
const SWEEP_MS = 250;

export interface Periodic {
  /** a node (re)starting in provisioning mode: schedule its first registration and alive event */
  started(node: SimNode): void;
  /** begin the sweep over `nodes` (nothing runs when neither kind is on) */
  run(nodes: SimNode[], rt: SimRuntime, publish: (node: SimNode, subject: string, bytes: Uint8Array) => void, serverOf: (node: SimNode) => string): void;
  stop(): void;
}

export function periodicMessages(o: PeriodicOptions, seed: number): Periodic {
  const regInterval = typeof o.registration === "object" ? o.registration.intervalMs : 120_000;
  const regOn = !!o.registration || !!o.legacyRegistration;
  const aliveInterval = typeof o.alive === "object" ? o.alive.intervalMs : ALIVE_INTERVAL;
  const aliveFirstWithin = typeof o.alive === "object" && o.alive.firstWithinMs !== undefined ? o.alive.firstWithinMs : Math.floor((aliveInterval * 29) / 30);
  const aliveOn = !!o.alive;
  if (aliveOn && !(aliveInterval > 0 && aliveFirstWithin >= 0)) throw new RangeError(`alive: intervalMs must be > 0 and firstWithinMs >= 0`);
  let timer: NodeJS.Timeout | undefined;

  return {
    started(n) {
      if (regOn) n.regNextAt = Date.now() + 1000 + Math.floor(rngFor(seed, `reg:${n.startups}`, n.identity)() * 3000);
      if (aliveOn) n.aliveNextAt = Date.now() + Math.floor(rngFor(seed, `alive:${n.startups}`, n.identity)() * aliveFirstWithin);
    },
    run(nodes, rt, publish, serverOf) {
      if (!regOn && !aliveOn) return;
      const mtime = Math.floor(Date.now() / 1000);
      timer = setInterval(() => {
        const now = Date.now();
        let sent = false;
        for (const n of nodes) {
          if (n.mode !== Mode.Provisioning) continue;
          if (n.regNextAt !== 0 && n.regNextAt <= now) {
            const bytes = encodeRegistration({
              identity: n.identity,
              file: "/etc/choria/metadata.json",
              content: encodeWithRaw(() => JSON.stringify({ identity: n.identity, ...rt.factsOf(n) })),
              mtime,
              updated: false,
              connectedServer: serverOf(n),
              // a server makes registration with the NewMessage of its protocol; a v2 one has its provisioning JWT
              ...(o.protocol === 2 ? { protocol: 2 as const, callerJwt: (o.provisioningJwt ?? "").trim() } : {}),
            });
            if (o.registration) publish(n, REGISTRATION_SUBJECT, bytes);
            if (o.legacyRegistration) publish(n, LEGACY_REGISTRATION_SUBJECT, bytes);
            n.regCount++;
            rt.stats.totals.registrations++;
            n.regNextAt = now + regInterval;
            sent = true;
          }
          if (n.aliveNextAt !== 0 && n.aliveNextAt <= now) {
            rt.lifecycle(n, "alive", "provision_mode_server");
            n.aliveNextAt = now + aliveInterval;
            sent = true;
          }
        }
        if (sent) rt.stats.changed();
      }, SWEEP_MS);
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
