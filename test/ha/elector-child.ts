/**
 * An elector in its own process, for tests that SIGKILL a leader: it cannot delete its key,
 * so the survivors must wait for the bucket TTL. Prints JSON lines: {name}, then {leader}.
 * argv: url bucket identity splayMs
 */
import { connect } from "nats";
import { Elector, instanceName } from "../../src/ha/index.js";

const [url, bucket, identity, splay] = process.argv.slice(2);
const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
const e = await Elector.open({ nc, bucket, name: instanceName(identity), splayMs: Number(splay) });
process.stdout.write(JSON.stringify({ name: e.name }) + "\n");
e.on("change", (c) => process.stdout.write(JSON.stringify({ leader: c.leader, reason: c.reason }) + "\n"));
e.start();
process.on("SIGTERM", () => void e.stop().then(() => nc.close()).then(() => process.exit(0)));
