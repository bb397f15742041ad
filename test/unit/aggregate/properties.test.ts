/**
 * Property tests: on arbitrary bytes, aggregation never throws and equals a naive reference that
 * decodes every row from scratch with BigInt; every decoder turns arbitrary bytes into a string.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MetricAggregator } from '../../../src/aggregate/metric.js';
import { bucketIndex } from '../../../src/aggregate/buckets.js';
import { SUM_SLOT, type LabelPlan, type MetricPlan } from '../../../src/aggregate/types.js';
import { createDecoder, DECODER_NAMES } from '../../../src/decode/index.js';
import { intType } from '../../../src/layout/field-type.js';
import { numberReader, readBigInt } from '../../../src/layout/read.js';
import type { IntTypeName, LayoutField } from '../../../src/layout/types.js';
import { type HistogramSeries, type ScalarSeries } from '../../../src/metric/series.js';

const INT_NAMES: IntTypeName[] = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'be16', 'be32', 'be64'];

interface Case {
  keyTypes: IntTypeName[];
  valueType: IntTypeName;
  cpus: number;
  cpu: 'sum' | 'max' | 'min' | 'label';
  labelFields: number[];
  rows: Uint8Array[];
  values: Uint8Array[];
}

const caseArb = fc
  .record({
    keyTypes: fc.array(fc.constantFrom(...INT_NAMES), { minLength: 1, maxLength: 3 }),
    valueType: fc.constantFrom(...INT_NAMES),
    cpus: fc.integer({ min: 1, max: 3 }),
    cpu: fc.constantFrom('sum' as const, 'max' as const, 'min' as const, 'label' as const),
    nRows: fc.integer({ min: 0, max: 40 }),
    seedLabels: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    // Small byte alphabets make rows collide, so grouping is exercised.
    bytes: fc.array(fc.constantFrom(0, 1, 2, 255, 128, 7), { minLength: 40 * 64, maxLength: 40 * 64 }),
  })
  .map((r): Case => {
    const keySize = r.keyTypes.reduce((n, t) => n + intType(t).size, 0);
    const slot = (intType(r.valueType).size + 7) & ~7;
    let p = 0;
    const take = (n: number) => Uint8Array.from({ length: n }, () => r.bytes[p++ % r.bytes.length]);
    const rows = Array.from({ length: r.nRows }, () => take(keySize));
    const values = Array.from({ length: r.nRows }, () => take(slot * r.cpus));
    return {
      keyTypes: r.keyTypes, valueType: r.valueType, cpus: r.cpus, cpu: r.cpus === 1 && r.cpu === 'label' ? 'sum' : r.cpu,
      labelFields: r.keyTypes.map((_, i) => i).filter((i) => r.seedLabels[i]), rows, values,
    };
  });

function keyFields(c: Case): LayoutField[] {
  let off = 0;
  return c.keyTypes.map((t, i) => {
    const f: LayoutField = { name: `k${i}`, offset: off, size: intType(t).size, type: intType(t) };
    off += f.size;
    return f;
  });
}

function plan(c: Case, histogram?: MetricPlan['histogram']): MetricPlan {
  const fields = keyFields(c);
  const labels: LabelPlan[] = c.labelFields.map((i) => ({
    name: `k${i}`, kind: 'field', fromKey: true, offset: fields[i].offset, size: fields[i].size,
    decoder: createDecoder({ decoder: intType(c.keyTypes[i]).signed ? 'int' : 'uint' }, fields[i]),
  }));
  if (c.cpu === 'label') labels.push({ name: 'cpu', kind: 'cpu' });
  return {
    name: 'm', type: histogram ? 'histogram' : 'counter', help: 'h', value: { offset: 0, fromKey: false, read: numberReader(intType(c.valueType)) },
    cpu: c.cpu, scale: 1, labels, histogram, maxSeries: 1_000_000,
  };
}

function runAgg(c: Case, p: MetricPlan) {
  const keySize = c.rows[0]?.length ?? keyFields(c).reduce((n, f) => n + f.size, 0);
  const slot = (intType(c.valueType).size + 7) & ~7;
  const agg = new MetricAggregator(p, { keySize, valueStride: slot * c.cpus, slotSize: slot, cpus: c.cpus, cpuIds: Array.from({ length: c.cpus }, (_, i) => i) });
  agg.begin();
  // Feed in two batches to cover batch boundaries.
  const half = Math.floor(c.rows.length / 2);
  for (const [a, b] of [[0, half], [half, c.rows.length]]) {
    agg.add(Buffer.concat(c.rows.slice(a, b)), Buffer.concat(c.values.slice(a, b)), b - a);
  }
  return agg.finish().family.series;
}

/** The naive reference: BigInt reads, a string key per row, no caches. */
function reference(c: Case, bucketOf?: (row: Uint8Array) => number, nb = 0): Map<string, number | { counts: number[]; sum: number }> {
  const fields = keyFields(c);
  const vt = intType(c.valueType);
  const slot = (vt.size + 7) & ~7;
  const out = new Map<string, number | { counts: number[]; sum: number }>();
  c.rows.forEach((row, i) => {
    const perCpu = Array.from({ length: c.cpus }, (_, cpu) => Number(readBigInt(c.values[i], cpu * slot, vt)));
    const rowsOut: [string[], number][] = c.cpu === 'label'
      ? perCpu.map((v, cpu) => [[String(cpu)], v])
      : [[[], perCpu.reduce((a, b) => (c.cpu === 'sum' ? a + b : c.cpu === 'max' ? Math.max(a, b) : Math.min(a, b)))]];
    for (const [extra, v] of rowsOut) {
      const key = JSON.stringify([...c.labelFields.map((f) => readBigInt(row, fields[f].offset, intType(c.keyTypes[f])).toString()), ...extra]);
      if (bucketOf === undefined) {
        out.set(key, ((out.get(key) as number | undefined) ?? 0) + v);
      } else {
        const h = (out.get(key) as { counts: number[]; sum: number } | undefined) ?? { counts: new Array<number>(nb).fill(0), sum: 0 };
        const b = bucketOf(row);
        if (b === SUM_SLOT) h.sum += v;
        else h.counts[b] += v;
        out.set(key, h);
      }
    }
  });
  return out;
}

const keyOf = (s: ScalarSeries | HistogramSeries) => JSON.stringify(Object.values(s.labels));

describe('aggregation properties', () => {
  it('equals the naive reference for counters on arbitrary bytes', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const got = runAgg(c, plan(c));
        const want = reference(c);
        expect(got.length).toBe(want.size);
        for (const s of got as ScalarSeries[]) {
          const w = want.get(keyOf(s)) as number;
          expect(Math.abs(s.value - w)).toBeLessThanOrEqual(Math.abs(w) * 1e-12 + 1e-9);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('equals the naive reference for histograms whose bucket is the first key field', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 6 }), (c0, min, span) => {
        const c: Case = { ...c0, labelFields: c0.labelFields.filter((f) => f !== 0) };
        const t = intType(c.keyTypes[0]);
        const rule = { kind: 'linear' as const, min, max: min + span, multiplier: 1 };
        const { bounds, index } = bucketIndex(rule, false);
        const got = runAgg(c, plan(c, { bucket: { offset: 0, fromKey: true, read: numberReader(t) }, bounds, index, sumScale: 1 }));
        const want = reference(c, (row) => index(Number(readBigInt(row, 0, t))), bounds.length + 1);
        expect(got.length).toBe(want.size);
        for (const s of got as HistogramSeries[]) {
          const w = want.get(keyOf(s)) as { counts: number[]; sum: number };
          let cum = 0;
          s.buckets.forEach((b, j) => {
            cum += w.counts[j];
            expect(b.count).toBeCloseTo(cum, 6);
          });
          expect(s.count).toBeCloseTo(cum, 6);
          expect(s.sum).toBeCloseTo(w.sum, 6);
        }
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('decoder properties', () => {
  const fieldArb = fc.oneof(
    fc.constantFrom(...INT_NAMES).map((t): LayoutField => ({ name: 'f', offset: 0, size: intType(t).size, type: intType(t) })),
    fc.integer({ min: 1, max: 32 }).map((n): LayoutField => ({ name: 'f', offset: 0, size: n, type: { kind: 'char', size: n } })),
    fc.constantFrom(4, 16, 6).map((n): LayoutField => ({ name: 'f', offset: 0, size: n, type: { kind: 'bytes', size: n } })),
  );
  const env = { kallsyms: () => '0000000000001000 T a\n0000000000002000 t b\n', partitions: () => '', cgroupRoot: '/nonexistent', ifname: () => undefined };

  it('never throws on arbitrary bytes, for every decoder that accepts the field', () => {
    fc.assert(
      fc.property(fieldArb, fc.constantFrom(...DECODER_NAMES.filter((d) => d !== 'static_map' && d !== 'regexp' && d !== 'enum')), fc.uint8Array({ minLength: 32, maxLength: 32 }), (field, name, bytes) => {
        let decoder;
        try {
          decoder = createDecoder({ decoder: name }, field, env);
        } catch {
          return; // this decoder does not take this field type: refused at config time
        }
        const out = decoder.decode(bytes, 0);
        expect(typeof out).toBe('string');
      }),
      { numRuns: 2000, seed: 3 },
    );
  });
});
