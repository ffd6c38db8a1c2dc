/**
 * Per-broker-set health, pure: the last `window` arrival verdicts of each broker set. When at
 * least `minLost` of them are lost and the lost share passes `maxLost`, the set is unhealthy:
 * nodes a policy routes to it are deferred with a reason until an operator clears it. This
 * catches an outage at home, not only a bad policy.
 *
 * A broker set is its name and its brokers: a version that points `ams` at other brokers routes
 * to another set, so a typo in one version does not condemn the set the previous version uses.
 */
export interface HealthOptions {
  window: number;
  minLost: number;
  maxLost: number;
}

export interface BrokerSetStatus {
  name: string;
  brokers: string[];
  healthy: boolean;
  /** lost and settled verdicts in the window */
  lost: number;
  of: number;
  /** ISO time it became unhealthy */
  since?: string;
}

interface SetState {
  name: string;
  brokers: string[];
  /** true = lost, oldest first */
  window: boolean[];
  lost: number;
  unhealthySince?: number;
  /** verdicts on nodes decided before an operator cleared the set are old news */
  clearedAt?: number;
}

export function brokerSetKey(name: string | undefined, brokers: readonly string[]): string {
  return `${name ?? ""}|${[...brokers].sort().join(",")}`;
}

export function brokerSetLabel(name: string | undefined): string {
  return name || "(none)";
}

export class BrokerSetHealth {
  private readonly sets = new Map<string, SetState>();

  constructor(private readonly o: HealthOptions) {}

  /**
   * Adds one verdict on a node decided at `decidedAt`; returns the set's status if this verdict
   * made it unhealthy.
   */
  record(name: string | undefined, brokers: readonly string[], lost: boolean, now: number, decidedAt = now): BrokerSetStatus | undefined {
    const key = brokerSetKey(name, brokers);
    let s = this.sets.get(key);
    if (!s) {
      s = { name: brokerSetLabel(name), brokers: [...brokers].sort(), window: [], lost: 0 };
      this.sets.set(key, s);
    }
    if (s.clearedAt !== undefined && decidedAt < s.clearedAt) return undefined;
    s.window.push(lost);
    if (lost) s.lost++;
    if (s.window.length > this.o.window && s.window.shift()) s.lost--;
    if (s.unhealthySince === undefined && s.lost >= this.o.minLost && s.lost / s.window.length > this.o.maxLost) {
      s.unhealthySince = now;
      return this.statusOf(s);
    }
    return undefined;
  }

  /** why nodes routed to this set must wait, or undefined when it is healthy */
  check(name: string | undefined, brokers: readonly string[]): string | undefined {
    const s = this.sets.get(brokerSetKey(name, brokers));
    if (s?.unhealthySince === undefined) return undefined;
    return `broker set ${s.name} is unhealthy: ${s.lost} of its last ${s.window.length} restarted nodes did not arrive at ${s.brokers.join(",")} (since ${new Date(s.unhealthySince).toISOString()}); deferred until an operator clears it (POST /broker-sets/${encodeURIComponent(s.name)}/clear)`;
  }

  /** Operator: the set is healthy again; its window starts afresh. Returns how many sets of that name were cleared. */
  clear(name: string, now = Date.now()): number {
    let n = 0;
    for (const s of this.sets.values()) {
      if (s.name !== name || s.unhealthySince === undefined) continue;
      s.unhealthySince = undefined;
      s.clearedAt = now;
      s.window = [];
      s.lost = 0;
      n++;
    }
    return n;
  }

  unhealthy(): BrokerSetStatus[] {
    return [...this.sets.values()].filter((s) => s.unhealthySince !== undefined).map((s) => this.statusOf(s));
  }

  status(): BrokerSetStatus[] {
    return [...this.sets.values()].map((s) => this.statusOf(s));
  }

  private statusOf(s: SetState): BrokerSetStatus {
    return { name: s.name, brokers: s.brokers, healthy: s.unhealthySince === undefined, lost: s.lost, of: s.window.length, since: s.unhealthySince === undefined ? undefined : new Date(s.unhealthySince).toISOString() };
  }
}
