import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { PolicyProblem } from "./errors.js";

/**
 * A parsed YAML file that remembers where every value came from, so problems found on the
 * plain JS data (schema errors, semantic checks) can be reported as file:line:col.
 */
export class SourceFile {
  readonly file: string;
  readonly text: string;
  readonly doc: Document;
  readonly data: unknown;
  readonly syntaxProblems: PolicyProblem[] = [];
  private readonly lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.text = text;
    this.lines = new LineCounter();
    // uniqueKeys is on by default: duplicate keys are syntax errors, not silent overrides
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    for (const e of [...this.doc.errors, ...this.doc.warnings]) {
      const pos = this.lines.linePos(e.pos[0]);
      this.syntaxProblems.push({ file, line: pos.line, col: pos.col, message: `YAML: ${firstLine(e.message)}` });
    }
    this.data = this.doc.errors.length ? undefined : this.doc.toJS({ maxAliasCount: 100 });
  }

  /** line/col of the value at `path`; walks up to the nearest existing parent when it is missing */
  pos(path: Array<string | number>, opts: { key?: boolean } = {}): { line: number; col: number } {
    let p = [...path];
    for (;;) {
      const node = this.nodeAt(p, opts.key === true && p.length === path.length);
      if (node) return this.lines.linePos(node);
      if (p.length === 0) return { line: 1, col: 1 };
      p = p.slice(0, -1);
    }
  }

  problem(path: Array<string | number>, message: string, rule?: string, opts: { key?: boolean } = {}): PolicyProblem {
    const { line, col } = this.pos(path, opts);
    const p: PolicyProblem = { file: this.file, line, col, message };
    if (rule) p.rule = rule;
    return p;
  }

  /** offset of the node (or its key when `key`) at `path` */
  private nodeAt(path: Array<string | number>, key: boolean): number | undefined {
    let node: unknown = this.doc.contents;
    let keyOffset: number | undefined;
    for (const seg of path) {
      keyOffset = undefined;
      if (isMap(node)) {
        const pair = node.items.find((it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === String(seg));
        if (!pair) return undefined;
        keyOffset = (pair.key as Node | null)?.range?.[0];
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
      } else {
        return undefined;
      }
      if (node === undefined) return undefined;
    }
    if (key && keyOffset !== undefined) return keyOffset;
    const range = (node as Node | null)?.range;
    if (range) return range[0];
    return keyOffset;
  }
}

/** JSON pointer (`/rules/0/then`) to path segments */
export function pointerToPath(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}
