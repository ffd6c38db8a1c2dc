/**
 * Fact values the simulator sends as given JSON text. A broken or hostile server can send
 * facts nested deeper than JSON.stringify can write (about 5,000 levels on Node's default
 * stack); tests build such a node with `nestedJson` and the daemon must cope with what it gets.
 */
let active: string[] | undefined;

export class RawJson {
  constructor(readonly text: string) {}

  /** a marker that encodeWithRaw swaps for the text; outside it the value cannot be encoded */
  toJSON(): string {
    if (!active) throw new Error("RawJson is written only by the simulator's reply encoder (encodeWithRaw)");
    active.push(this.text);
    return `\u0000raw-json:${active.length - 1}`;
  }
}

/** `{"k":{"k":...leaf...}}`, `depth` objects deep */
export function nestedJson(depth: number, leaf = "true", key = "k"): RawJson {
  return new RawJson(`{"${key}":`.repeat(depth) + leaf + "}".repeat(depth));
}

/** runs an encoder built on JSON.stringify and splices in the text of every RawJson it met */
export function encodeWithRaw(encode: () => string): string {
  const outer = active;
  const texts: string[] = (active = []);
  try {
    const out = encode();
    return texts.length === 0 ? out : out.replace(/"\\u0000raw-json:(\d+)"/g, (_, i: string) => texts[Number(i)]!);
  } finally {
    active = outer;
  }
}
