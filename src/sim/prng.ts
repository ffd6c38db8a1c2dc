/**
 * Deterministic randomness: everything a node "is" (facts, faults, key) derives from
 * (seed, identity, purpose), so a test that knows the seed knows which node has which
 * trait without the simulator having to store it.
 */

/** 32-bit FNV-1a; good enough to spread identities, and stable across runs and platforms. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix) so near-identical identities do not give near-identical values
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: a tiny seeded generator returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator dedicated to one purpose of one identity under one seed. */
export function rngFor(seed: number, purpose: string, identity: string): () => number {
  return mulberry32(hash32(`${seed}/${purpose}/${identity}`));
}

/** One uniform draw in [0, 1) for (seed, purpose, identity). */
export function draw(seed: number, purpose: string, identity: string): number {
  return rngFor(seed, purpose, identity)();
}

export function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)];
}

export function intBetween(rnd: () => number, min: number, max: number): number {
  return min + Math.floor(rnd() * (max - min + 1));
}
