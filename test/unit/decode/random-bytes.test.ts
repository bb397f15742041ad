import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDecoder, DECODER_NAMES, STYLE_DECODERS, type DecoderEnv, type DecoderSpec } from '../../../src/decode/index.js';
import type { LayoutField } from '../../../src/layout/types.js';
import { field, prng } from './helpers.js';

const INTS = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'be16', 'be32', 'be64'];
const ARRAYS = ['char[1]', 'char[4]', 'char[16]', 'char[64]', 'u8[1]', 'u8[4]', 'u8[6]', 'u8[16]', 'u8[33]'];

/** For every decoder: the field types it accepts, and its options. */
const CASES: Record<string, { types: string[]; spec?: DecoderSpec; enum?: boolean }> = {
  uint: { types: INTS },
  int: { types: INTS },
  hex: { types: [...INTS, ...ARRAYS] },
  string: { types: ARRAYS },
  inet_ip: { types: ['u32', 's32', 'be32', 'u8[4]', 'u8[16]'] },
  ksym: { types: ['u64', 's64', 'be64'] },
  syscall: { types: INTS },
  errno: { types: INTS },
  cgroup: { types: ['u64', 's64', 'be64'] },
  ifname: { types: INTS },
  majorminor: { types: ['u32', 's32', 'be32', 'u64', 's64', 'be64'] },
  static_map: { types: [...INTS, ...ARRAYS], spec: { map: { '0': 'zero', '1': 'one' } } },
  regexp: { types: [...INTS, ...ARRAYS], spec: { pattern: '[0-9a]' } },
  enum: { types: INTS, enum: true },
  kstack: { types: ['u64', 'u8[16]', 'u8[160]'] },
  dname: { types: ARRAYS },
  pci_vendor: { types: INTS },
  pci_device: { types: INTS },
  pci_class: { types: INTS },
  pci_subclass: { types: INTS },
};

const root = mkdtempSync(join(tmpdir(), 'cgroup-fuzz-'));
mkdirSync(join(root, 'a/b'), { recursive: true });
const pciIds = join(root, 'pci.ids');
writeFileSync(pciIds, '8086  Intel Corporation\n\t1000  82542 Gigabit Ethernet Controller (Fiber)\nC 02  Network controller\n\t00  Ethernet controller\n');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const env: DecoderEnv = {
  kallsyms: () => 'ffffffff81000000 T _stext\nffffffff81001000 t helper\n',
  partitions: () => 'major minor  #blocks  name\n\n   8        0  100 sda\n',
  cgroupRoot: root,
  ifname: (i) => (i === 1 ? 'lo' : undefined),
  arch: 'x64',
  pciIds: [pciIds],
};

describe('decode() on random bytes', () => {
  it('covers every decoder', () => {
    expect(Object.keys(CASES).sort()).toEqual([...DECODER_NAMES].sort());
  });

  for (const [decoder, c] of Object.entries(CASES)) {
    it(`${decoder}: a string out of any bytes (a regexp may drop the row), never a throw`, () => {
      const random = prng(0x5eed + decoder.length);
      for (const type of c.types) {
        const f: LayoutField = field(type, c.enum === true ? { enumNames: new Map([[0n, 'ZERO'], [-1n, 'MINUS_ONE'], [255n, 'FF']]) } : {});
        const styles: DecoderSpec[] = STYLE_DECODERS.includes(decoder) ? [{}, { style: 'ebpf_exporter' }] : [{}];
        for (const [archEnv, style] of (decoder === 'syscall' ? [env, { ...env, arch: 'arm64' }] : [env]).flatMap((e) => styles.map((s) => [e, s] as const))) {
          const d = createDecoder({ decoder, ...c.spec, ...style }, f, archEnv);
          for (let i = 0; i < 300; i++) {
            const buf = new Uint8Array(f.size + Math.floor(random() * 8));
            for (let j = 0; j < buf.length; j++) buf[j] = random() < 0.2 ? 0 : random() < 0.1 ? 0xff : Math.floor(random() * 256);
            const offset = Math.floor(random() * (buf.length - f.size + 1));
            const out = d.decode(buf, offset);
            if (decoder === 'regexp' && out === undefined) continue;
            expect(typeof out, `${decoder} on ${type}`).toBe('string');
          }
          // A buffer that ends inside the field is a caller's bug, still no throw.
          expect(() => d.decode(new Uint8Array(1).fill(0xff), 0)).not.toThrow();
        }
      }
    });
  }
});
