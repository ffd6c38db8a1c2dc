import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBuiltinCa } from "../src/ca/index.js";
import { runE2e, runEssential } from "./e2e.js";
const nodes = Number(process.argv[2] ?? 10000);
const pairs = Number(process.argv[3] ?? 3);
const prof = process.argv[4];
const caDir = mkdtempSync(join(tmpdir(), "cp-ab-ca-"));
await initBuiltinCa(caDir, { key: "ecdsa" });
for (let i = 0; i < pairs; i++) {
  const d = await runE2e({ nodes, caDir, profileDir: prof ? prof + "/daemon" : undefined });
  const e = await runEssential({ nodes, caDir, profileDir: prof ? prof + "/ess" : undefined });
  console.log(JSON.stringify({ pair: i, daemon: Math.round(d.nodesPerMin), essential: Math.round(e.nodesPerMin), ratio: +(d.nodesPerMin / e.nodesPerMin).toFixed(3), dCpuMs: +((d.provisionerCpuS * 1000) / d.daemon.settled).toFixed(3), eCpuMs: +((e.provisionerCpuS * 1000) / e.done).toFixed(3), dFleetCpu: d.fleet.cpuS, eFleetCpu: e.fleetCpuS, load: (await import("node:os")).loadavg()[0] }));
}
process.exit(0);
