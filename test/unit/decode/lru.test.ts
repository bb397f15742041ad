import { describe, expect, it } from 'vitest';
import { createDecoder, type DecoderEnv } from '../../../src/decode/index.js';
import { LruCache } from '../../../src/decode/lru.js';
import { at3, field, host, u64le } from './helpers.js';

describe('LruCache', () => {
  it('evicts the least recently used entry past its bound', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    c.set('c', 4); // an update does not grow it
    expect(c.size).toBe(2);
    expect(c.get('c')).toBe(4);
  });
});

describe('decoder contexts', () => {
  it('share one kallsyms read between decoders built from the same env object, not across env objects', () => {
    let reads = 0;
    const kallsyms = (): string => (reads++, 'ffffffff81000000 T _stext\n');
    const env: DecoderEnv = { kallsyms };
    const addr = at3(host(...u64le(0xffffffff81000001n)));
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), env).decode(addr, 3)).toBe('_stext');
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), env).decode(addr, 3)).toBe('_stext');
    expect(reads).toBe(1);
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), { kallsyms }).decode(addr, 3)).toBe('_stext');
    expect(reads).toBe(2);
  });
});
