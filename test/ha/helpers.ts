/**
 * Test pieces for HA: a leadership monitor that records every change and the most leaders
 * ever active at once, a TCP proxy that can cut one client off the broker (a real network
 * partition), and a child process running an elector so it can be SIGKILLed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { appendFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { connect as natsConnect, type NatsConnection } from "nats";
import { Elector, openBucket } from "../../src/ha/index.js";
import { freePort } from "../../src/transport/local-server.js";
import { Waiters } from "../helpers/waiters.js";
import type { TestDaemon } from "../helpers/daemon.js";

export const HERE = new URL(".", import.meta.url).pathname;

/** Creates the bucket with a short TTL before any instance opens it (instances keep an existing bucket's TTL). */
export async function makeBucket(url: string, bucket: string, ttlMs: number): Promise<void> {
  const nc = await natsConnect({ servers: url });
  try {
    const { ttlMs: got } = await openBucket(nc, bucket, { ttlMs });
    if (got !== ttlMs) throw new Error(`bucket ${bucket} exists with TTL ${got}ms, wanted ${ttlMs}ms`);
  } finally {
    await nc.close();
  }
}

export interface LeaderEvent {
  who: string;
  leader: boolean;
  at: number;
  reason: string;
}

/** Tracks leadership across instances, event driven. */
export class LeaderMonitor {
  readonly events: LeaderEvent[] = [];
  readonly leaders = new Set<string>();
  maxConcurrent = 0;
  private readonly waiters = new Waiters();

  record(who: string, leader: boolean, reason = ""): void {
    if (leader) this.leaders.add(who);
    else this.leaders.delete(who);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.leaders.size);
    this.events.push({ who, leader, at: performance.now(), reason });
    this.waiters.notify();
  }

  watch(who: string, e: Elector): void {
    e.on("change", (c) => this.record(who, c.leader, c.reason));
  }

  /** resolves with the time (performance.now) at which pred first held, checked on every change */
  waitFor(pred: (m: LeaderMonitor) => boolean, timeoutMs: number, what: string): Promise<number> {
    return this.waiters.until(
      () => pred(this),
      () => performance.now(),
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs}ms waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => [e.who, e.leader, e.reason]))}`),
    );
  }
}

/** A TCP proxy in front of the broker; cut() drops its connections and refuses new ones until heal(). */
export interface Partition {
  url: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Partition> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `nats://127.0.0.1:${port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    heal() {
      open = true;
    },
    close: () =>
      new Promise<void>((r) => {
        open = false;
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface ChildElector {
  child: ChildProcess;
  name: Promise<string>;
  /** resolves when the child reports it became leader */
  leader: Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs test/ha/elector-child.ts in its own process (so it can die without cleaning up). */
export function spawnElectorChild(url: string, args: { bucket: string; identity: string; splayMs?: number }): ChildElector {
  const child = spawn(process.execPath, ["--import", "tsx", `${HERE}elector-child.ts`, url, args.bucket, args.identity, String(args.splayMs ?? 0)], { stdio: ["ignore", "pipe", "inherit"] });
  let nameR!: (n: string) => void;
  let leaderR!: (t: number) => void;
  const name = new Promise<string>((r) => (nameR = r));
  const leader = new Promise<number>((r) => (leaderR = r));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const m = JSON.parse(line) as { name?: string; leader?: boolean };
    if (m.name) nameR(m.name);
    if (m.leader) leaderR(performance.now());
  });
  return {
    child,
    name,
    leader,
    kill: (signal = "SIGKILL") =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once("exit", () => r());
        child.kill(signal);
      }),
  };
}

export async function connectTo(url: string): Promise<NatsConnection> {
  // test clients reconnect fast so a broker restart does not dominate the timings
  return natsConnect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 50 });
}

export interface DaemonChild {
  child: ChildProcess;
  label: string;
  ready: Promise<{ pid: number; admin: string }>;
  role: string;
  /** every role with the wall-clock ms it began (children share this machine's clock) */
  roles: Array<{ role: string; t: number }>;
  /** identity -> outcomes this instance recorded, in order */
  records: Map<string, string[]>;
  /** the last sequence of the shared ledger stream this instance applied (0 before any) */
  ledgerSeq: number;
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Tracks a set of daemon children: roles and records arrive as events on `changed`. */
export class DaemonGroup {
  readonly members: DaemonChild[] = [];
  /** "changed" whenever a member's role, records or ledger position changed */
  readonly events = new EventEmitter();
  private readonly waiters = new Waiters();

  spawn(url: string, cfg: object, label: string): DaemonChild {
    const child = spawn(process.execPath, ["--import", "tsx", `${HERE}daemon-child.ts`, url, JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "inherit"] });
    let readyR!: (v: { pid: number; admin: string }) => void;
    const m: DaemonChild = {
      child,
      label,
      ready: new Promise((r) => (readyR = r)),
      role: "starting",
      roles: [],
      records: new Map(),
      ledgerSeq: 0,
      exited: new Promise<void>((r) => child.once("exit", () => r())),
      kill: (signal = "SIGKILL") => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return m.exited;
      },
    };
    createInterface({ input: child.stdout! }).on("line", (line) => {
      // with TEST_LOG_LEVEL set the children log to stdout too; HA_TEST_LOG keeps a copy for debugging
      if (process.env.HA_TEST_LOG) appendFileSync(process.env.HA_TEST_LOG, `${label} ${line}\n`);
      let msg: { ready?: boolean; pid: number; admin: string; role?: string; t?: number; rec?: string; o?: string; ledgerSeq?: number };
      try {
        msg = JSON.parse(line);
      } catch {
        return; // stray output
      }
      if (msg.role) {
        m.role = msg.role;
        m.roles.push({ role: msg.role, t: msg.t ?? Date.now() });
      }
      if (msg.ready) readyR({ pid: msg.pid, admin: msg.admin });
      if (msg.ledgerSeq !== undefined) m.ledgerSeq = Math.max(m.ledgerSeq, msg.ledgerSeq);
      if (msg.rec && msg.o) {
        const l = m.records.get(msg.rec) ?? [];
        l.push(msg.o);
        m.records.set(msg.rec, l);
      }
      this.changed();
    });
    void m.exited.then(() => {
      m.role = "dead";
      m.roles.push({ role: "dead", t: Date.now() });
      this.changed();
    });
    this.members.push(m);
    return m;
  }

  private changed(): void {
    this.waiters.notify();
    this.events.emit("changed");
  }

  withRole(role: string): DaemonChild[] {
    return this.members.filter((m) => m.role === role);
  }

  /** the most instances that held `role` at the same time, from the role timelines */
  maxConcurrent(role: string): number {
    const edges: Array<[number, number]> = [];
    for (const m of this.members) {
      m.roles.forEach((r, i) => {
        if (r.role !== role) return;
        edges.push([r.t, +1]);
        const end = m.roles[i + 1];
        if (end) edges.push([end.t, -1]);
      });
    }
    // at equal times process ends first: a hand-over in the same millisecond is not an overlap
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let cur = 0;
    let max = 0;
    for (const [, d] of edges) max = Math.max(max, (cur += d));
    return max;
  }

  /** every record of every instance (dead ones included: they printed before dying) */
  outcomes(identity: string): string[] {
    return this.members.flatMap((m) => m.records.get(identity) ?? []);
  }

  waitFor(pred: (g: DaemonGroup) => boolean, timeoutMs: number, what: string): Promise<number> {
    return this.waiters.until(
      () => pred(this),
      () => performance.now(),
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs}ms waiting for ${what}; roles: ${this.members.map((m) => `${m.label}=${m.role}`).join(" ")}`),
    );
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill("SIGTERM")));
  }
}

/** resolves when the instance's role becomes `role` (the Provisioner applies roles through setActive) */
export function roleOf(d: TestDaemon, role: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = d.provisioner;
    if (p.role === role) return resolve(performance.now());
    const orig = p.setActive.bind(p);
    const t = setTimeout(() => reject(new Error(`${d.settings.identity} did not become ${role}; is ${p.role}`)), timeoutMs);
    p.setActive = (active, r) => {
      orig(active, r);
      if (r === role) {
        clearTimeout(t);
        p.setActive = orig;
        resolve(performance.now());
      }
    };
  });
}
