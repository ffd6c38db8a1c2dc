/**
 * Nodes held because more than one server answered as them (a cloned image, an impostor on the
 * provisioning broker). A held node is not queued again until an operator clears it
 * (POST /nodes/<identity>/clear): retrying cannot tell twins apart, and every retry would make
 * each real server generate a new key. Bounded, because discovery replies can name any identity.
 */
import type { ConflictKind } from "../transport/index.js";

export interface HeldConflict {
  identity: string;
  /** agent#action whose replies conflicted */
  step: string;
  kind: ConflictKind;
  detail: string;
  /** ISO time of the first conflict */
  since: string;
  /** conflicts seen for this node while held (each discovery cycle adds one for live twins) */
  count: number;
}

export const MAX_HELD_CONFLICTS = 10_000;

export class ConflictRegistry {
  private readonly held = new Map<string, HeldConflict>();
  /** conflicts not held because the registry was full */
  overflow = 0;

  constructor(private readonly max = MAX_HELD_CONFLICTS) {}

  get size(): number {
    return this.held.size;
  }

  isHeld(identity: string): boolean {
    return this.held.has(identity);
  }

  /** "new": now held; "again": was held already (nothing to record twice); "full": not held */
  hold(c: Omit<HeldConflict, "since" | "count">): "new" | "again" | "full" {
    const had = this.held.get(c.identity);
    if (had) {
      had.count++;
      return "again";
    }
    if (this.held.size >= this.max) {
      this.overflow++;
      return "full";
    }
    this.held.set(c.identity, { ...c, since: new Date().toISOString(), count: 1 });
    return "new";
  }

  get(identity: string): HeldConflict | undefined {
    return this.held.get(identity);
  }

  clear(identity: string): HeldConflict | undefined {
    const c = this.held.get(identity);
    this.held.delete(identity);
    return c;
  }

  /** the oldest `limit` held nodes, for /status */
  list(limit = 100): HeldConflict[] {
    const out: HeldConflict[] = [];
    for (const c of this.held.values()) {
      if (out.length >= limit) break;
      out.push({ ...c });
    }
    return out;
  }
}
