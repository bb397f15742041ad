import { expect, it } from 'vitest';
import { bucketIndex, observedKey, type BucketRule } from '../../../src/aggregate/buckets.js';

/** The upper bound (le) a value lands under, through its key and the histogram's index (with a sum field). */
function le(rule: BucketRule, v: number): number {
  const { bounds, index } = bucketIndex(rule, true);
  const slot = index(observedKey(rule, v));
  return slot < bounds.length ? bounds[slot] : Infinity;
}

it('puts an observed value under the smallest bound at least as large, as Prometheus le means', () => {
  const exp2: BucketRule = { kind: 'exp2', min: 0, max: 10, multiplier: 1 };
  expect([0, 1, 2, 3, 4, 5, 1023, 1024, 1025, 5000].map((v) => le(exp2, v))).toEqual([1, 1, 2, 4, 4, 8, 1024, 1024, Infinity, Infinity]);
  // Keys below min count in the first bucket; the multiplier scales the bounds, not the comparison.
  const us: BucketRule = { kind: 'exp2', min: 3, max: 6, multiplier: 1e-6 };
  expect([1, 8, 9, 64, 65].map((v) => le(us, v))).toEqual([8e-6, 8e-6, 16e-6, 64e-6, Infinity]);
  const zero: BucketRule = { kind: 'exp2zero', min: 0, max: 4, multiplier: 1 };
  expect([0, 1, 2, 3, 8, 9].map((v) => le(zero, v))).toEqual([0, 1, 2, 4, 8, Infinity]);
  const linear: BucketRule = { kind: 'linear', min: 1, max: 5, multiplier: 10 };
  expect([0, 1, 2.5, 5, 6].map((v) => le(linear, v))).toEqual([10, 10, 30, 50, Infinity]);
  const fixed: BucketRule = { kind: 'fixed', min: 5, max: 100, multiplier: 1, values: [5, 50, 100] };
  expect([0, 5, 6, 100, 101].map((v) => le(fixed, v))).toEqual([5, 5, 50, 100, Infinity]);
});

it('finds exact powers of two at every size a double holds', () => {
  const rule: BucketRule = { kind: 'exp2', min: 0, max: 64, multiplier: 1 };
  for (let k = 1; k <= 52; k++) {
    expect(observedKey(rule, 2 ** k)).toBe(k);
    expect(observedKey(rule, 2 ** k + 1)).toBe(k + 1);
    expect(observedKey(rule, 2 ** k - 1)).toBe(k === 1 ? 0 : k);
  }
});
