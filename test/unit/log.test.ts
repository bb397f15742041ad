import { describe, expect, it } from 'vitest';
import { logFormat, toLogfmt } from '../../src/log.js';

describe('log format', () => {
  it('is logfmt at a terminal and JSON elsewhere, unless LOG_FORMAT says', () => {
    expect(logFormat(undefined, true)).toBe('logfmt');
    expect(logFormat(undefined, false)).toBe('json');
    expect(logFormat('json', true)).toBe('json');
    expect(logFormat('logfmt', false)).toBe('logfmt');
    expect(logFormat('yaml', false)).toBe('json');
  });

  it('writes a pino line as logfmt: time, level and msg first, values quoted only when they must be', () => {
    const line = JSON.stringify({
      level: 'warn', time: Date.UTC(2026, 11, 2, 5, 9, 26, 459), pid: 1, hostname: 'h', name: 'bpf-map-exporter',
      map: 'flows', path: '/a b', empty: '', eq: 'a=b', quote: 'say "hi"', newline: 'a\nb', count: 3, ok: true, none: null,
      nested: { errno: 'ENOENT' }, err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' }, msg: 'read failed',
    });
    expect(toLogfmt(line)).toBe(
      'time=2026-12-02T05:09:26.459Z level=warn msg="read failed" map=flows path="/a b" empty="" eq="a=b" quote="say \\"hi\\"" ' +
        'newline="a\\nb" count=3 ok=true none=null nested="{\\"errno\\":\\"ENOENT\\"}" err=boom\n',
    );
  });

  it('passes a line that is not JSON through as it is', () => {
    expect(toLogfmt('not json')).toBe('not json\n');
  });
});
