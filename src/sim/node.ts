/**
 * Per-node state, kept compact because a fleet holds up to 100k of these: facts are not
 * stored (they are recomputed from the seed), optional things stay undefined until used.
 */
import type { KeyObject } from "node:crypto";

export enum Mode {
  /** answering provisioning subjects */
  Provisioning = "provisioning",
  /** restart accepted: still subscribed, but the Go mutex is held, so choria_provision is silent */
  Restarting = "restarting",
  /** shutdown accepted: as Restarting, then gone for good */
  ShuttingDown = "shutting_down",
  /** restarted with its new configuration: a normal server, off the provisioning subjects */
  Server = "server",
  /** stopped by the shutdown action */
  Shutdown = "shutdown",
  /** the die_after_* faults: stopped answering without a word */
  Dead = "dead",
}

export interface CertificateRecord {
  subject: string;
  issuer: string;
  serial: string;
  /** for the report: when it stops being valid */
  validTo: string;
}

export interface Violation {
  kind: string;
  detail: string;
  /** ISO time */
  at: string;
}

export class SimNode {
  readonly index: number;
  readonly identity: string;
  readonly shard: number;
  readonly keyIndex: number;
  readonly faults: number;
  mode: Mode = Mode.Provisioning;
  version: string;
  upgradable: boolean;
  configureCount = 0;
  restartCount = 0;
  /** the lose_first_restart fault took its one restart request */
  restartLost = false;
  /** startup events published (first start, and each return in provisioning mode) */
  startups = 0;
  /** which process this is: a crash starts the next, and requests the old one took die with it */
  boot = 0;
  lockBy: string | undefined = undefined;
  lockUntil = 0;
  /** tail of the choria_provision queue: Go serialises the agent's actions with one mutex */
  provisionTail: Promise<void> | undefined = undefined;
  /** the latest configuration configure accepted (kept for the report even if the node later loses it) */
  configuration: Record<string, string> | undefined = undefined;
  /** configure ran since this process started: what restart reads from "disk" */
  configuredThisBoot = false;
  certificate: CertificateRecord | undefined = undefined;
  violations: Violation[] | undefined = undefined;
  /** X25519 private key from the latest jwt call; configure decrypts a supplied key with it */
  ecdhPrivate: KeyObject | undefined = undefined;
  /** set when configure delivered a private key: from then on it, not the pool key, must match the certificate */
  privateKey: KeyObject | undefined = undefined;
  /** hex ed25519 public key from the latest gen25519 (server.seed on disk) */
  ed25519Public: string | undefined = undefined;
  /** the server JWT configure delivered */
  serverJwt: string | undefined = undefined;
  /** counts replies, so per-reply random choices (drop, latency) are deterministic per node */
  replySeq = 0;
  /** next registration publish, ms since epoch; 0 when registration is off */
  regNextAt = 0;
  regCount = 0;
  /** next alive lifecycle event, ms since epoch; 0 when alive events are off */
  aliveNextAt = 0;
  /** the home broker URL it arrived at after its latest restart */
  home: string | undefined = undefined;

  constructor(o: { index: number; identity: string; shard: number; keyIndex: number; faults: number; version: string; upgradable: boolean }) {
    this.index = o.index;
    this.identity = o.identity;
    this.shard = o.shard;
    this.keyIndex = o.keyIndex;
    this.faults = o.faults;
    this.version = o.version;
    this.upgradable = o.upgradable;
  }

  /** still subscribed to the provisioning subjects (restart and shutdown keep it until the splay ends) */
  get listening(): boolean {
    return this.mode === Mode.Provisioning || this.mode === Mode.Restarting || this.mode === Mode.ShuttingDown;
  }

  /** no longer in provisioning mode and never coming back by itself */
  get finished(): boolean {
    return this.mode === Mode.Server || this.mode === Mode.Shutdown || this.mode === Mode.Dead;
  }
}
