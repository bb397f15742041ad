import { describe, expect, it } from 'vitest';
import { BpfError } from '../../../src/bpf/errors.js';
import { BtfError } from '../../../src/bpf/btf-parse.js';
import { CheckpointError } from '../../../src/collect/checkpoint.js';
import { JournalError } from '../../../src/collect/journal.js';
import { ConfigError, ConfigErrors } from '../../../src/yaml/errors.js';
import { DecoderConfigError } from '../../../src/decode/errors.js';
import { LayoutError } from '../../../src/layout/build.js';
import { UnsupportedMetric } from '../../../src/publish/otlp-encode.js';
import { ERROR_CODES, ExporterError, isExpected } from '../../../src/util/errors.js';

describe('the error catalogue', () => {
  const at = { file: 'c.yaml', line: 3, column: 5 };
  const made: [ExporterError, string, string][] = [
    [new BpfError('lookup batch', -2, { map: 'flows' }), 'ERR_BPF', 'BpfError'],
    [new BtfError('bad kind 99', { typeId: 7 }), 'ERR_BTF', 'BtfError'],
    [new LayoutError('field x does not fit', 1), 'ERR_LAYOUT', 'LayoutError'],
    [new DecoderConfigError('inet_ip needs 4 or 16 bytes', 'inet_ip', 'addr'), 'ERR_DECODER', 'DecoderConfigError'],
    [new ConfigError(at, 'maps[0].name', 'is missing'), 'ERR_CONFIG', 'ConfigError'],
    [new ConfigErrors([new ConfigError(at, '', 'x')]), 'ERR_CONFIG', 'ConfigErrors'],
    [new CheckpointError('cannot save: ENOSPC', 'ENOSPC'), 'ERR_CHECKPOINT', 'CheckpointError'],
    [new JournalError('cannot append: EIO', 'EIO'), 'ERR_JOURNAL', 'JournalError'],
    [new UnsupportedMetric('data point type 9'), 'ERR_OTLP_UNSUPPORTED', 'UnsupportedMetric'],
  ];

  it('every error of ours is an ExporterError with its catalogued code and its class name', () => {
    for (const [e, code, name] of made) {
      expect(e).toBeInstanceOf(ExporterError);
      expect(e).toBeInstanceOf(Error);
      expect(isExpected(e)).toBe(true);
      expect(e.code).toBe(code);
      expect(e.name).toBe(name);
      expect(e.message.split('\n')).toHaveLength(1);
    }
    // Every code in the catalogue has a class that raises it, and no class raises an uncatalogued one.
    expect(new Set(made.map(([, code]) => code))).toEqual(new Set(Object.keys(ERROR_CODES)));
  });

  it('anything else is not expected: a bug keeps its stack', () => {
    for (const e of [new Error('x'), new TypeError('y'), Object.assign(new Error('z'), { code: 'ERR_BPF' }), 'ERR_BPF', undefined, null]) expect(isExpected(e)).toBe(false);
  });

  it('keeps the structure a caller reads', () => {
    const bpf = made[0][0] as BpfError;
    expect(bpf).toMatchObject({ errno: 2, errnoName: 'ENOENT', op: 'lookup batch', map: 'flows' });
    expect((made[6][0] as CheckpointError).errnoName).toBe('ENOSPC');
    expect((made[1][0] as BtfError).typeId).toBe(7);
  });
});
