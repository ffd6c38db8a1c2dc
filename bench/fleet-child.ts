/**
 * The simulated fleet in a process of its own, so the provisioner's CPU and RSS are measured
 * apart from the simulator's. IPC:
 *
 *   parent -> {type:"start", opts}   child -> {type:"started", t0, listeningMs}
 *                                     child -> {type:"startupComplete", ms}
 *   parent -> {type:"report"}        child -> {type:"report", totals, cpu}
 *   parent -> {type:"timing"}        child -> {type:"timing", nodes: [[firstRequestMs, doneMs], ...]}
 *                                     (with start's track: true; ms since start, per node done)
 *   parent -> {type:"stop"}          child exits
 */
import "./orphan-exit.js";
import { startFleet, type Fleet, type FleetOptions } from "../src/sim/index.js";

let fleet: Fleet | undefined;
let cpu0: NodeJS.CpuUsage | undefined;
/** per node: its first directed request and its restart or shutdown reply, ms since start */
const firstAt = new Map<string, number>();
const doneAt = new Map<string, number>();

/** times each node from the fleet's side, for provisioners whose own records we cannot read */
function track(f: Fleet, t0: number): void {
  f.events.on("request", (identity: string, k: string) => {
    if (k !== "discovery#ping" && !firstAt.has(identity)) firstAt.set(identity, performance.now() - t0);
  });
  f.events.on("reply", (identity: string, k: string) => {
    if (k === "choria_provision#restart" || k === "choria_provision#shutdown") doneAt.set(identity, performance.now() - t0);
  });
}

function send(m: unknown): void {
  process.send?.(m);
}

process.on("message", (m: { type: string; opts?: FleetOptions; track?: boolean }) => {
  switch (m.type) {
    case "start":
      void (async () => {
        cpu0 = process.cpuUsage();
        const t0 = performance.now();
        try {
          fleet = await startFleet(m.opts!);
        } catch (e) {
          send({ type: "error", error: (e as Error).stack });
          process.exit(1);
        }
        if (m.track) track(fleet, t0);
        send({ type: "started", listeningMs: performance.now() - t0 });
        await fleet.startupComplete;
        send({ type: "startupComplete", ms: performance.now() - t0 });
      })();
      break;
    case "report": {
      const t = fleet?.report().totals;
      const c = process.cpuUsage(cpu0);
      send({ type: "report", totals: t, cpuS: (c.user + c.system) / 1e6, rssMiB: process.memoryUsage.rss() / 2 ** 20 });
      break;
    }
    case "timing":
      send({ type: "timing", nodes: [...doneAt].map(([id, done]) => [firstAt.get(id) ?? done, done]) });
      break;
    case "stop":
      void (async () => {
        await fleet?.stop();
        send({ type: "stopped" });
        process.exit(0);
      })();
      break;
  }
});
