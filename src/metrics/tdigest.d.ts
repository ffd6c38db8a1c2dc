// The parts of tdigest (prom-client's own quantile sketch) that sliding-summary.ts uses; it ships no types.
declare module "tdigest" {
  export interface Centroid {
    mean: number;
    n: number;
  }
  export class TDigest {
    constructor(delta?: number | false, K?: number, CX?: number);
    push(x: number | number[], n?: number): void;
    push_centroid(c: Centroid | Centroid[]): void;
    percentile(p: number): number | undefined;
    compress(): void;
    size(): number;
    toArray(everything?: boolean): Centroid[];
    reset(): void;
  }
}
