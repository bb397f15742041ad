import { SUM_SLOT } from './types.js';

export interface BucketRule {
  kind: 'exp2' | 'exp2zero' | 'linear' | 'fixed';
  min: number;
  max: number;
  multiplier: number;
  /** fixed: the bucket keys there are, each an upper bound before the multiplier. */
  values?: readonly number[];
}

/**
 * Upper bounds of a histogram whose bucket is a key field, and where each key goes:
 * exp2: le = 2^k * m; exp2zero: le = 0 for k = 0, else 2^(k-1) * m; linear: le = k * m;
 * fixed: le = k * m for the listed keys. Keys below min count in the first bucket (their values are
 * smaller, so cumulative counts stay right), keys above max only in +Inf. Without a sum field, the
 * key max + 1 (fixed: the largest key + 1) holds the sum (ebpf_exporter's convention); a map that
 * keeps no sum there exports _sum 0.
 */
export function bucketIndex(rule: BucketRule, sumField: boolean): { bounds: number[]; index: (key: number) => number } {
  const { kind, min, max, multiplier: m } = rule;
  if (kind === 'fixed') {
    const keys = [...(rule.values ?? [])].sort((a, b) => a - b);
    const bounds = keys.map((k) => k * m);
    return {
      bounds,
      index: (key) => {
        for (let j = 0; j < keys.length; j++) if (key <= keys[j]) return j;
        // ebpf_exporter's fixed buckets keep their sum at the last key + 1, as the others at max + 1.
        return key === keys[keys.length - 1] + 1 && !sumField ? SUM_SLOT : keys.length;
      },
    };
  }
  const bound = kind === 'exp2' ? (k: number) => 2 ** k * m : kind === 'exp2zero' ? (k: number) => (k === 0 ? 0 : 2 ** (k - 1) * m) : (k: number) => k * m;
  const bounds: number[] = [];
  for (let k = min; k <= max; k++) bounds.push(bound(k));
  const n = bounds.length;
  return {
    bounds,
    index: (key) => (key <= min ? 0 : key <= max ? key - min : key === max + 1 && !sumField ? SUM_SLOT : n),
  };
}

/**
 * The bucket key a value observed by a histogram (`buckets.of`: one event, one observation) goes to:
 * the smallest key whose upper bound, before the multiplier, is at least the value, as
 * Prometheus's `le` means; a value above every bound gets max + 1 (fixed: the largest key + 1),
 * which a histogram with a sum field counts in +Inf alone. Keys below min are left to bucketIndex,
 * which counts them in the first bucket.
 */
export function observedKey(rule: BucketRule, v: number): number {
  switch (rule.kind) {
    case 'exp2':
      return v <= 1 ? 0 : Math.min(ceilLog2(v), rule.max + 1);
    case 'exp2zero':
      return v <= 0 ? 0 : Math.min(ceilLog2(v) + 1, rule.max + 1);
    case 'linear':
      return Math.min(Math.max(0, Math.ceil(v)), rule.max + 1);
    case 'fixed': {
      const keys = [...(rule.values ?? [])].sort((a, b) => a - b);
      const k = keys.find((key) => v <= key);
      return k ?? keys[keys.length - 1] + 1;
    }
  }
}

/** The smallest k with 2^k >= v, for v > 1 (exact for every integer a double holds). */
function ceilLog2(v: number): number {
  let k = Math.ceil(Math.log2(v));
  // log2 rounds: step to the exact answer.
  while (k > 0 && 2 ** (k - 1) >= v) k--;
  while (2 ** k < v) k++;
  return k;
}
