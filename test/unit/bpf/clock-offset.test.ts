import { expect, it } from 'vitest';
import { offsetOfNarrowest, wallMinusMonotonicNs } from '../../../src/bpf/libbpf.js';

it('takes the wall clock offset from the narrowest bracket: a preempted read does not count', () => {
  // The second bracket was preempted for 1.3 ms between its wall read and its second monotonic read.
  const offset = offsetOfNarrowest([
    [1_000n, 5_001_020n, 1_040n],
    [2_000n, 5_002_010n, 1_302_000n],
    [3_000n, 5_003_012n, 3_030n],
  ]);
  expect(offset).toBe(5_003_012n - 3_015n);
});

it('agrees with Date.now() and the monotonic clock to within a millisecond', () => {
  const wall = BigInt(Date.now()) * 1_000_000n;
  const mono = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const d = wall - (mono + wallMinusMonotonicNs());
  expect(d < 0n ? -d : d).toBeLessThan(2_000_000n); // Date.now() is whole milliseconds
});
