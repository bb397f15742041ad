import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CGROUP_REWALK_MS, createCgroupDecoder, findCgroup2Root } from '../../../src/decode/cgroup.js';
import { makeContext, type DecoderEnv } from '../../../src/decode/env.js';
import { createIfnameDecoder, IFNAME_RESCAN_MS, sysfsIfname } from '../../../src/decode/ifname.js';
import { createDecoder } from '../../../src/decode/index.js';
import { createKsymDecoder, KSYM_RELOAD_MS, parseKallsyms } from '../../../src/decode/ksym.js';
import { createMajorMinorDecoder, parsePartitions, PARTITIONS_REREAD_MS } from '../../../src/decode/majorminor.js';
import { at3, field, host, u64le } from './helpers.js';

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const u64 = (v: bigint): Uint8Array => at3(host(...u64le(v)));

describe('ksym', () => {
  const KALLSYMS = [
    '0000000000000000 A fixed_percpu_data',
    '0000000000001000 A cpu_debug_store',
    'ffffffff81000000 T _stext',
    'ffffffff81000000 T _text',
    'ffffffff81001100 t helper',
    'ffffffff81001000 T do_one',
    'ffffffffc0a01000 t mod_fn\t[mymod]',
    'garbage line',
    '',
  ].join('\n');

  it('names the symbol containing an address: exact, between, duplicates, module symbols', () => {
    const d = createDecoder({ decoder: 'ksym' }, field('u64'), { kallsyms: () => KALLSYMS });
    expect(d.decode(u64(0xffffffff81001000n), 3)).toBe('do_one');
    expect(d.decode(u64(0xffffffff810010ffn), 3)).toBe('do_one');
    expect(d.decode(u64(0xffffffff81001234n), 3)).toBe('helper');
    expect(d.decode(u64(0xffffffff81000000n), 3)).toBe('_stext');
    expect(d.decode(u64(0xffffffffc0a01010n), 3)).toBe('mod_fn');
  });

  it('answers unknown_addr below the first symbol, ignoring absolute (per-CPU) symbols', () => {
    const d = createDecoder({ decoder: 'ksym' }, field('u64'), { kallsyms: () => KALLSYMS });
    expect(d.decode(u64(0xffffffff80ffffffn), 3)).toBe('unknown_addr:0xffffffff80ffffff');
    expect(d.decode(u64(0x1008n), 3)).toBe('unknown_addr:0x1008');
    expect(d.decode(u64(0n), 3)).toBe('unknown_addr:0x0');
  });

  it('answers unknown_addr when kallsyms shows only zero addresses, or cannot be read', () => {
    const zeros = '0000000000000000 T _stext\n0000000000000000 T do_one\n';
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), { kallsyms: () => zeros }).decode(u64(0xffffffff81001000n), 3)).toBe('unknown_addr:0xffffffff81001000');
    const failing: DecoderEnv = {
      kallsyms: () => {
        throw new Error('EACCES');
      },
    };
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), failing).decode(u64(0xffffffff81001000n), 3)).toBe('unknown_addr:0xffffffff81001000');
  });

  it('reads kallsyms at the first lookup, shares it across decoders of one env, re-reads on a miss at most once a minute', () => {
    let reads = 0;
    let text = '0000000000000000 T _stext\n';
    const c = clock();
    const ctx = makeContext({ kallsyms: () => (reads++, text) }, c.now);
    const a = createKsymDecoder(field('u64'), {}, ctx);
    const b = createKsymDecoder(field('u64'), {}, ctx);
    expect(reads).toBe(0);
    expect(a.decode(u64(0xffffffff81000010n), 3)).toBe('unknown_addr:0xffffffff81000010');
    expect(reads).toBe(1);
    text = KALLSYMS; // privileges granted, or a module loaded
    c.advance(KSYM_RELOAD_MS - 1);
    expect(b.decode(u64(0xffffffff81000010n), 3)).toBe('unknown_addr:0xffffffff81000010');
    expect(reads).toBe(1);
    c.advance(1);
    expect(b.decode(u64(0xffffffff81000010n), 3)).toBe('_stext');
    expect(a.decode(u64(0xffffffff81001001n), 3)).toBe('do_one');
    expect(reads).toBe(2);
  });

  it('parses the real format: module suffix dropped, sorted, first name of an address kept', () => {
    const { addrs, names } = parseKallsyms(KALLSYMS);
    expect([...addrs].map((a) => a.toString(16))).toEqual(['ffffffff81000000', 'ffffffff81001000', 'ffffffff81001100', 'ffffffffc0a01000']);
    expect(names).toEqual(['_stext', 'do_one', 'helper', 'mod_fn']);
  });
});

describe('cgroup', () => {
  let root: string;
  const id = (rel: string): bigint => statSync(join(root, rel), { bigint: true }).ino;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cgroup-'));
    mkdirSync(join(root, 'system.slice/foo.service'), { recursive: true });
    mkdirSync(join(root, 'user.slice/user-1000.slice'), { recursive: true });
    writeFileSync(join(root, 'cgroup.procs'), ''); // files are not cgroups
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('maps an id (the directory\'s inode number) to its path below the root', () => {
    const d = createDecoder({ decoder: 'cgroup' }, field('u64'), { cgroupRoot: root });
    expect(d.decode(u64(id('.')), 3)).toBe('/');
    expect(d.decode(u64(id('system.slice/foo.service')), 3)).toBe('/system.slice/foo.service');
    expect(d.decode(u64(id('user.slice/user-1000.slice')), 3)).toBe('/user.slice/user-1000.slice');
    expect(d.decode(u64(id('cgroup.procs')), 3)).toBe(`unknown_cgroup_id:${id('cgroup.procs')}`);
    expect(d.decode(u64(2n ** 64n - 1n), 3)).toBe('unknown_cgroup_id:18446744073709551615');
  });

  it('reads the id from a u32 too (an id kept in 32 bits, as ebpf_exporter\'s cfs-throttling keeps it)', () => {
    const d = createDecoder({ decoder: 'cgroup' }, field('u32'), { cgroupRoot: root });
    const u32 = (v: bigint): Uint8Array => at3(host(...u64le(v).slice(0, 4)));
    expect(d.decode(u32(id('system.slice/foo.service')), 3)).toBe('/system.slice/foo.service');
  });

  it('re-walks on a miss at most once a second, and keeps ids of removed cgroups', () => {
    const c = clock();
    const d = createCgroupDecoder(field('u64'), {}, makeContext({ cgroupRoot: root }, c.now));
    const foo = id('system.slice/foo.service');
    expect(d.decode(u64(foo), 3)).toBe('/system.slice/foo.service');
    mkdirSync(join(root, 'system.slice/bar.service'));
    const bar = id('system.slice/bar.service');
    c.advance(CGROUP_REWALK_MS - 1);
    expect(d.decode(u64(bar), 3)).toBe(`unknown_cgroup_id:${bar}`);
    rmSync(join(root, 'system.slice/foo.service'), { recursive: true });
    c.advance(1);
    expect(d.decode(u64(bar), 3)).toBe('/system.slice/bar.service');
    expect(d.decode(u64(foo), 3)).toBe('/system.slice/foo.service');
  });

  it('visits and caches at most cacheSize directories', () => {
    const d = createCgroupDecoder(field('u64'), {}, makeContext({ cgroupRoot: root, cacheSize: 3 }, clock().now));
    // Breadth first: /, /system.slice, /user.slice fill the three places; deeper ones stay unknown.
    expect(d.decode(u64(id('system.slice')), 3)).toBe('/system.slice');
    expect(d.decode(u64(id('system.slice/foo.service')), 3)).toMatch(/^unknown_cgroup_id:/);
  });

  it('survives a root that does not exist', () => {
    const d = createDecoder({ decoder: 'cgroup' }, field('u64'), { cgroupRoot: join(root, 'missing') });
    expect(d.decode(u64(1n), 3)).toBe('unknown_cgroup_id:1');
  });

  it('falls back to the first candidate when no cgroup2 mount is found', () => {
    expect(findCgroup2Root([root, join(root, 'nope')])).toBe(root);
  });
});

describe('ifname', () => {
  it('names indexes through env.ifname; unknown, zero and failing lookups print the number', () => {
    const names = new Map([[1, 'lo'], [2, 'eth0']]);
    const d = createDecoder({ decoder: 'ifname' }, field('u32'), { ifname: (i) => names.get(i) });
    expect(d.decode(at3(host(1, 0, 0, 0)), 3)).toBe('lo');
    expect(d.decode(at3(host(2, 0, 0, 0)), 3)).toBe('eth0');
    expect(d.decode(at3(host(99, 0, 0, 0)), 3)).toBe('99');
    expect(d.decode(at3(host(0, 0, 0, 0)), 3)).toBe('0');
    const throwing = createDecoder({ decoder: 'ifname' }, field('u32'), {
      ifname: () => {
        throw new Error('boom');
      },
    });
    expect(throwing.decode(at3(host(2, 0, 0, 0)), 3)).toBe('2');
  });

  it('reads <dir>/<name>/ifindex by default, re-scanning on a miss at most once a second', () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-'));
    try {
      const add = (name: string, index: number): void => {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'ifindex'), `${index}\n`);
      };
      add('lo', 1);
      add('eth0', 2);
      mkdirSync(join(dir, 'bonding_masters')); // no ifindex: skipped
      const c = clock();
      const lookup = sysfsIfname(dir, 100, c.now);
      const d = createIfnameDecoder(field('u32'), {}, makeContext({ ifname: lookup }));
      expect(d.decode(at3(host(2, 0, 0, 0)), 3)).toBe('eth0');
      add('veth7', 7);
      c.advance(IFNAME_RESCAN_MS - 1);
      expect(d.decode(at3(host(7, 0, 0, 0)), 3)).toBe('7');
      c.advance(1);
      expect(d.decode(at3(host(7, 0, 0, 0)), 3)).toBe('veth7');
      expect(sysfsIfname(join(dir, 'missing'), 100, c.now)(1)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('majorminor', () => {
  const PARTITIONS = `major minor  #blocks  name

   8        0  488386584 sda
   8        1     524288 sda1
   8      256     102400 sdq
 259        0  500107608 nvme0n1
 259        3       1000 nvme0n1p3
`;
  /** The kernel's new_encode_dev(MKDEV(major, minor)). */
  const encode = (major: number, minor: number): number => ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
  const le32 = (v: number): number[] => host(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);

  it('names devices from /proc/partitions, minors above 255 included', () => {
    const d = createDecoder({ decoder: 'majorminor' }, field('u32'), { partitions: () => PARTITIONS });
    expect(d.decode(at3(le32(encode(8, 1))), 3)).toBe('sda1');
    expect(d.decode(at3(le32(encode(8, 0))), 3)).toBe('sda');
    expect(d.decode(at3(le32(encode(8, 256))), 3)).toBe('sdq');
    expect(d.decode(at3(le32(encode(259, 3))), 3)).toBe('nvme0n1p3');
  });

  it('prints unknown devices as major:minor', () => {
    const d = createDecoder({ decoder: 'majorminor' }, field('u32'), { partitions: () => PARTITIONS });
    expect(d.decode(at3(le32(encode(259, 4))), 3)).toBe('259:4');
    expect(d.decode(at3(le32(encode(4095, 0xfffff))), 3)).toBe('4095:1048575');
  });

  it('reads the low 32 bits of a u64', () => {
    const d = createDecoder({ decoder: 'majorminor' }, field('u64'), { partitions: () => PARTITIONS });
    expect(d.decode(u64(BigInt(encode(8, 1))), 3)).toBe('sda1');
    expect(d.decode(u64((0xffffffffn << 32n) | BigInt(encode(8, 1))), 3)).toBe('sda1');
  });

  it('re-reads /proc/partitions on a miss at most once a second; an unreadable file is empty', () => {
    let text = '';
    let reads = 0;
    const c = clock();
    const d = createMajorMinorDecoder(field('u32'), {}, makeContext({ partitions: () => (reads++, text) }, c.now));
    expect(d.decode(at3(le32(encode(8, 1))), 3)).toBe('8:1');
    text = PARTITIONS;
    expect(d.decode(at3(le32(encode(8, 1))), 3)).toBe('8:1');
    expect(reads).toBe(1);
    c.advance(PARTITIONS_REREAD_MS);
    expect(d.decode(at3(le32(encode(8, 1))), 3)).toBe('sda1');
    expect(d.decode(at3(le32(encode(8, 0))), 3)).toBe('sda');
    expect(reads).toBe(2);
    const failing = createDecoder({ decoder: 'majorminor' }, field('u32'), {
      partitions: () => {
        throw new Error('ENOENT');
      },
    });
    expect(failing.decode(at3(le32(encode(8, 1))), 3)).toBe('8:1');
  });

  it('parses only well-formed rows, up to a limit', () => {
    expect([...parsePartitions(PARTITIONS, 2)]).toEqual([['8:0', 'sda'], ['8:1', 'sda1']]);
    expect(parsePartitions('major minor  #blocks  name\n\nbad row here x\n').size).toBe(0);
  });
});

describe('provisional answers', () => {
  it('the system decoders mark their stand-ins for names they did not find, and only those', () => {
    const u32 = (v: number): Uint8Array => at3(host(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24));
    const cases: [string, string, DecoderEnv, Uint8Array, Uint8Array][] = [
      ['ksym', 'u64', { kallsyms: () => 'ffffffff81001000 T do_one\n' }, u64(0xffffffff81001000n), u64(0x1000n)],
      ['ifname', 'u32', { ifname: (i) => (i === 1 ? 'lo' : undefined) }, u32(1), u32(7)],
      ['majorminor', 'u32', { partitions: () => 'major minor  #blocks  name\n\n   8        1       1000 sda1\n' }, u32((8 << 8) | 1), u32((200 << 8) | 9)],
    ];
    for (const [name, type, env, known, unknown] of cases) {
      const d = createDecoder({ decoder: name }, field(type), env);
      if (known.length > 0) expect(d.provisional?.(d.decode(known, 3)!), `${name} known`).toBe(false);
      expect(d.provisional?.(d.decode(unknown, 3)!), `${name} unknown`).toBe(true);
    }
    // cgroup: a folder stands for the hierarchy; its inode number is its id.
    const root = mkdtempSync(join(tmpdir(), 'bme-cg-'));
    try {
      const cg = createDecoder({ decoder: 'cgroup' }, field('u64'), { cgroupRoot: root });
      expect(cg.provisional?.(cg.decode(u64(statSync(root, { bigint: true }).ino), 3)!)).toBe(false);
      expect(cg.provisional?.(cg.decode(u64(1n), 3)!)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    // Decoders whose answers are complete have nothing to retry.
    expect(createDecoder({ decoder: 'uint' }, field('u32'), {}).provisional).toBeUndefined();
  });
});
