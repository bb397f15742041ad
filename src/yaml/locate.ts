/** Positions of a parsed YAML document's nodes, by key path. */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { ConfigPath } from './errors.js';

/** A position in a config file; line and column are 1-based. */
export interface SourceRef {
  file: string;
  line: number;
  column: number;
}

/** A node found at a path: the value, and the key it is written under (none for a list item or the root). */
export interface Found {
  value: Node | null;
  key: Node | null;
  /** How many segments of the path were found; less than the path's length when it is not all written. */
  depth: number;
}

export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  /** The node an alias refers to; other nodes as they are. An unknown alias gives null. */
  resolve(node: unknown): Node | null {
    if (isAlias(node)) return node.resolve(this.doc) ?? null;
    return node !== null && typeof node === 'object' ? (node as Node) : null;
  }

  /** The start of a node; a node without range (an empty document) is the file's start. */
  pos(node: Node | null): SourceRef {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file: this.file, line: 1, column: 1 };
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /** The value's position, or its key's when the value is empty (`key:` with nothing after it). */
  valuePos(f: { value: Node | null; key: Node | null }): SourceRef {
    return this.pos(isEmpty(f.value) && f.key !== null ? f.key : f.value);
  }

  /** Descend the document along a path, as far as it is written. */
  find(path: ConfigPath): Found {
    let found: Found = { value: this.resolve(this.doc.contents), key: null, depth: 0 };
    for (const seg of path) {
      const node = found.value;
      if (typeof seg === 'number' && isSeq(node)) {
        if (seg >= node.items.length) break;
        found = { value: this.resolve(node.items[seg]), key: null, depth: found.depth + 1 };
      } else if (typeof seg === 'string' && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
        if (pair === undefined) break;
        found = { value: this.resolve(pair.value), key: pair.key as Node, depth: found.depth + 1 };
      } else break;
    }
    return found;
  }

  /**
   * Where a path is written: a scalar value's own position; for a list or mapping (or nothing),
   * the key it is written under, since a block collection starts on the next line; a list item's
   * position. A path not all written gives its nearest written parent.
   */
  where(path: ConfigPath): SourceRef {
    const f = this.find(path);
    if (isScalar(f.value) && !isEmpty(f.value)) return this.pos(f.value);
    return this.pos(f.key ?? f.value);
  }
}

/** `key:` with nothing after it. */
export function isEmpty(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}
