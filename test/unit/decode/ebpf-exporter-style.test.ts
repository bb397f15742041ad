import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDecoder, type DecoderEnv, type DecoderSpec } from '../../../src/decode/index.js';
import { syscallTable } from '../../../src/decode/syscall.js';
import { field, host, u64le } from './helpers.js';

/** Label values of the decoders whose `style: ebpf_exporter` gives theirs, beside our own. */
const THEIRS: DecoderSpec = { style: 'ebpf_exporter' };
const u32 = (v: number): Uint8Array => Uint8Array.from(host(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24));
const u64 = (v: bigint): Uint8Array => Uint8Array.from(host(...u64le(v)));
const dec = (decoder: string, type: string, buf: Uint8Array, spec: DecoderSpec = {}, env?: DecoderEnv): string | undefined =>
  createDecoder({ decoder, ...spec }, field(type), env).decode(buf, 0);

describe('syscall', () => {
  const sys = (arch: string, nr: number, spec: DecoderSpec = {}): string | undefined => dec('syscall', 'u32', u32(nr), spec, { arch });

  it('names, natively, every system call up to this kernel\'s (Linux 6.18): 335, 336 and 451 to 469 on x86-64', () => {
    expect([335, 336, 451, 452, 457, 461, 462, 463, 467, 468, 469].map((nr) => sys('x64', nr))).toEqual(['uretprobe', 'uprobe', 'cachestat', 'fchmodat2', 'statmount', 'lsm_list_modules', 'mseal', 'setxattrat', 'open_tree_attr', 'file_getattr', 'file_setattr']);
    expect([451, 462, 469].map((nr) => sys('arm64', nr))).toEqual(['cachestat', 'mseal', 'file_setattr']);
    expect([7, 17, 18].map((nr) => sys('x64', nr))).toEqual(['poll', 'pread64', 'pwrite64']);
  });

  it('names every system call this kernel lists in tracefs (its syscalls:sys_enter_* events)', () => {
    const dir = '/sys/kernel/tracing/events/syscalls';
    const events = readdirSync(dir).filter((e) => e.startsWith('sys_enter_')).map((e) => e.slice('sys_enter_'.length));
    expect(events.length).toBeGreaterThan(300);
    const names = new Set(syscallTable(process.arch)!.values());
    // Events are named after the kernel's SYSCALL_DEFINE (newstat, sendfile64, umount), the table after the call.
    const known = (e: string): boolean => names.has(e) || names.has(e.replace(/^new/, '')) || names.has(e.replace(/64$/, '')) || names.has(`${e}2`);
    expect(events.filter((e) => !known(e))).toEqual([]);
  });

  it('with style: ebpf_exporter, names as theirs (strace v6.8 handler names), none past 461, unknown as unknown_syscall:N', () => {
    expect([0, 7, 17, 18, 23, 270, 293, 447].map((nr) => sys('x64', nr, THEIRS))).toEqual(['read', 'poll_time64', 'pread', 'pwrite', 'select', 'pselect6_time64', 'pipe2', 'memfd_secret']);
    expect([0, 1, 4, 6, 293, 447].map((nr) => sys('arm64', nr, THEIRS))).toEqual(['io_setup', 'io_destroy', 'io_getevents_time64', 'setxattr', 'rseq', 'memfd_secret']);
    expect(sys('x64', 461, THEIRS)).toBe('lsm_list_modules');
    expect(sys('x64', 462, THEIRS)).toBe('unknown_syscall:462');
    expect(sys('x64', 400, THEIRS)).toBe('unknown_syscall:400');
    expect(sys('x64', 400)).toBe('400');
    // Their uint reads unsigned: -1 in an s32 is 4294967295.
    expect(dec('syscall', 's32', u32(0xffffffff), THEIRS, { arch: 'x64' })).toBe('unknown_syscall:4294967295');
  });
});

describe('errno', () => {
  it('with style: ebpf_exporter, names the unsigned value as theirs and prints the rest as unknown:N', () => {
    expect(dec('errno', 'u32', u32(1), THEIRS)).toBe('EPERM');
    expect(dec('errno', 'u32', u32(32), THEIRS)).toBe('EPIPE');
    expect(dec('errno', 'u32', u32(104), THEIRS)).toBe('ECONNRESET');
    expect(dec('errno', 'u32', u32(0), THEIRS)).toBe('unknown:0');
    expect(dec('errno', 'u32', u32(1000), THEIRS)).toBe('unknown:1000');
    expect(dec('errno', 'u32', u32(524), THEIRS)).toBe('unknown:524');
    expect(dec('errno', 'u32', u32(-2 >>> 0), THEIRS)).toBe('unknown:4294967294');
    expect(dec('errno', 'u64', u64(2n ** 64n - 1n), THEIRS)).toBe('unknown:18446744073709551615');
  });

  it('names every Linux errno natively and in their style (1 to 133 but 41 and 58, which Linux leaves unused)', () => {
    expect(dec('errno', 'u32', u32(15))).toBe('ENOTBLK');
    expect(dec('errno', 'u32', u32(133), THEIRS)).toBe('EHWPOISON');
    expect(dec('errno', 'u32', u32(72), THEIRS)).toBe('EMULTIHOP');
    expect(dec('errno', 'u32', u32(41), THEIRS)).toBe('unknown:41');
    expect(dec('errno', 'u32', u32(0))).toBe('0');
  });
});

describe('ifname and majorminor', () => {
  const env: DecoderEnv = { ifname: (i) => (i === 1 ? 'lo' : undefined), partitions: () => 'major minor  #blocks  name\n\n   8        0  100 sda\n   8       16  100 sdb\n' };

  it('ifname: unknown indexes as unknown:N with style: ebpf_exporter, as the number without; both provisional', () => {
    expect(dec('ifname', 'u32', u32(1), THEIRS, env)).toBe('lo');
    expect(dec('ifname', 'u32', u32(0), THEIRS, env)).toBe('unknown:0');
    expect(dec('ifname', 'u32', u32(0xa3000006), THEIRS, env)).toBe('unknown:2734686214');
    expect(dec('ifname', 'u32', u32(7), {}, env)).toBe('7');
    const d = createDecoder({ decoder: 'ifname', ...THEIRS }, field('u32'), env);
    expect(d.provisional?.('unknown:7')).toBe(true);
    expect(d.provisional?.('eth0')).toBe(false);
  });

  it('majorminor: unknown devices as unknown:major:minor with style: ebpf_exporter, as major:minor without', () => {
    expect(dec('majorminor', 'u32', u32(0x0800), THEIRS, env)).toBe('sda');
    expect(dec('majorminor', 'u32', u32(0x0810), THEIRS, env)).toBe('sdb');
    expect(dec('majorminor', 'u32', u32(0x8810), THEIRS, env)).toBe('unknown:136:16');
    expect(dec('majorminor', 'u32', u32(0x8810), {}, env)).toBe('136:16');
    const d = createDecoder({ decoder: 'majorminor', ...THEIRS }, field('u32'), env);
    expect(d.provisional?.('unknown:136:16')).toBe(true);
    expect(d.provisional?.('136:16')).toBe(false);
  });
});

describe('cgroup', () => {
  const root = mkdtempSync(join(tmpdir(), 'style-cgroup-'));
  mkdirSync(join(root, 'system.slice/x.service'), { recursive: true });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const id = (rel: string): bigint => statSync(join(root, rel), { bigint: true }).ino;

  it('gives the full path, mount point first, with style: ebpf_exporter; the path below it without', () => {
    const env: DecoderEnv = { cgroupRoot: root };
    expect(dec('cgroup', 'u64', u64(id('system.slice/x.service')), THEIRS, env)).toBe(`${root}/system.slice/x.service`);
    expect(dec('cgroup', 'u64', u64(id('.')), THEIRS, env)).toBe(root);
    expect(dec('cgroup', 'u64', u64(id('system.slice/x.service')), {}, env)).toBe('/system.slice/x.service');
    expect(dec('cgroup', 'u64', u64(1n), THEIRS, env)).toBe('unknown_cgroup_id:1');
  });
});

describe('inet_ip', () => {
  const v6 = (...groups: number[]): Uint8Array => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));

  it('writes an IPv4-mapped IPv6 address as the IPv4 address with style: ebpf_exporter, as ::ffff:a.b.c.d without', () => {
    const mapped = v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304);
    expect(dec('inet_ip', 'u8[16]', mapped, THEIRS)).toBe('1.2.3.4');
    expect(dec('inet_ip', 'u8[16]', mapped)).toBe('::ffff:1.2.3.4');
    expect(dec('inet_ip', 'u8[16]', v6(0x2400, 0xcb00, 4, 0x1024, 0, 0, 0xa29e, 0xfd8f), THEIRS)).toBe('2400:cb00:4:1024::a29e:fd8f');
    expect(dec('inet_ip', 'u8[16]', v6(0, 0, 0, 0, 0, 0, 0, 1), THEIRS)).toBe('::1');
    expect(dec('inet_ip', 'u8[16]', v6(0, 0, 0, 0, 0, 0, 0x0102, 0x0304), THEIRS)).toBe('::102:304');
    expect(dec('inet_ip', 'u8[4]', Uint8Array.of(1, 2, 3, 4), THEIRS)).toBe('1.2.3.4');
  });
});
