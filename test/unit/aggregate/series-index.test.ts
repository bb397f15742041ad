/**
 * SeriesIndex against a Map keyed by the joined values: the same ids for any sequence of label sets,
 * across growth and a reset to a compacted table, including values that would collide if joined
 * without a separator ("a" + "bc" and "ab" + "c").
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { SeriesIndex } from '../../../src/aggregate/series-index.js';
import { LabelTable } from '../../../src/metric/series.js';

const NAMES = ['x', 'y'];

function check(sets: [string, string][]): void {
  const table = new LabelTable();
  const index = new SeriesIndex(NAMES, table);
  const model = new Map<string, number>();
  for (const [x, y] of sets) {
    const key = JSON.stringify([x, y]);
    const found = index.find([x, y]);
    expect(found).toBe(model.get(key) ?? -1);
    if (found < 0) {
      const id = table.add({ x, y });
      index.add(id);
      model.set(key, id);
    }
  }
  // A compaction keeps every other series, in a new table.
  const kept = new LabelTable();
  table.labels.filter((_, id) => id % 2 === 0).forEach((l) => kept.add(l));
  index.reset(kept);
  kept.labels.forEach((l, id) => expect(index.find([l.x, l.y])).toBe(id));
  table.labels.filter((_, id) => id % 2 === 1).forEach((l) => expect(index.find([l.x, l.y])).toBe(-1));
}

it('finds what a joined-key Map finds, across growth and a reset', () => {
  check([['a', 'bc'], ['ab', 'c'], ['a', 'bc'], ['', ''], ['', ''], ['\u0000', ''], ['', '\u0000']]);
  check(Array.from({ length: 5000 }, (_, i) => [String(i % 1500), String(i % 7)] as [string, string]));
  fc.assert(fc.property(fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 })), { maxLength: 300 }), (sets) => check(sets)));
});
