/**
 * ebpf_exporter's config format on the real kernel: a program of ours written in its style
 * (test/fixtures/ebpf-exporter/compat.bpf.c, compat.yaml), run by `run --config.dir DIR
 * --config.names compat` (their flags), a workload of known calls, and the ebpf_exporter_* part of
 * /metrics compared line for line with what their semantics give: names with their prefix, labels
 * cut from the key bytes by size and padding through their decoders, per-CPU series by the cpu
 * label, histogram buckets and the sum key. The workload's comm ("bmecompat") is the program's
 * filter, so nothing else on the host adds to the counts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { possibleCpus } from '../../src/bpf/cpus.js';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { loadedPrograms, programsHeldBy, root, sleep, startExporter, stillLoaded } from './support.js';

const N = 37;
const WHO = [0, 1, 2, 3, 5, 100, 5000];

/** The lines of a histogram as their exporter (and ours) writes them. */
function histogram(name: string, labels: string, buckets: [string, number][], sum: string, count: number): string[] {
  const sep = labels === '' ? '' : ',';
  const bare = labels === '' ? '' : `{${labels}}`;
  return [
    ...buckets.map(([le, c]) => `${name}_bucket{${labels}${sep}le="${le}"} ${c}`),
    `${name}_bucket{${labels}${sep}le="+Inf"} ${count}`,
    `${name}_sum${bare} ${sum}`,
    `${name}_count${bare} ${count}`,
  ];
}

/**
 * What their semantics give after the workload (N getppid calls, getpriority(PRIO_PROCESS, v) for
 * each v of WHO, getpriority(PRIO_PGRP, 7)), worked out by hand from the program and the config.
 */
function expected(cpus: readonly number[]): string[] {
  const p = 'ebpf_exporter_compat_';
  const cumulative = (les: string[], counts: number[]): [string, number][] => {
    let sum = 0;
    return les.map((le, i) => [le, (sum += counts[i])]);
  };
  // exp2, bucket_max 10, multiplier 0.001: who 0 and 1 in key 0, 2 in 1, 3 in 2, 5 (and 7) in 3, 100 in 7, 5000 clamped to 10.
  const exp2Les = Array.from({ length: 11 }, (_, k) => String(2 ** k / 1000));
  // linear, multiplier 50, bucket_max 20: who / 50, clamped; the sum key holds 5118 and is multiplied too.
  const linearLes = Array.from({ length: 21 }, (_, k) => String(k * 50));
  // exp2zero, bucket_max 12: 0 in key 0, v in log2 bucket + 1; le 0, then 2^(k-1).
  const exp2zeroLes = ['0', ...Array.from({ length: 12 }, (_, k) => String(2 ** k))];
  return [
    `${p}all_calls_total ${N + WHO.length + 1}`,
    `${p}getppid_calls ${N}`,
    ...['00000000', '02000000', '64000000', '88000000'].map((low) => `${p}parity_total{low="${low}",parity="even"} 1`),
    ...['01000000', '03000000', '05000000', '07000000'].map((low) => `${p}parity_total{low="${low}",parity="odd"} 1`),
    ...cpus.flatMap((cpu) => [0, 1].map((slot) => `${p}percpu_calls_total{cpu="${cpu}",slot="${slot}"} ${cpu === 0 && slot === 0 ? N : 0}`)),
    `${p}syscalls_total{comm="bmecompat",syscall="getppid"} ${N}`,
    `${p}syscalls_total{comm="bmecompat",syscall="getpriority"} ${WHO.length + 1}`,
    ...histogram(`${p}who_exp2`, 'which="pgrp"', cumulative(exp2Les, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]), '0.007', 1),
    ...histogram(`${p}who_exp2`, 'which="process"', cumulative(exp2Les, [2, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]), '5.111', 7),
    ...histogram(`${p}who_exp2zero`, '', cumulative(exp2zeroLes, [1, 1, 1, 1, 2, 0, 0, 0, 1, 0, 0, 0, 1]), '5118', 8),
    ...histogram(`${p}who_fixed`, '', [['1', 2], ['10', 6], ['100', 8]], '5118', 8),
    ...histogram(`${p}who_linear`, '', cumulative(linearLes, [6, 0, 1, ...Array<number>(17).fill(0), 1]), '255900', 8),
  ].sort();
}

/** The samples of their metrics in a /metrics text, sorted; and their TYPE lines. */
function theirs(text: string): { samples: string[]; types: string[] } {
  const lines = text.split('\n');
  return {
    samples: lines.filter((l) => l.startsWith('ebpf_exporter_')).sort(),
    types: lines.filter((l) => l.startsWith('# TYPE ebpf_exporter_')).sort(),
  };
}

kernelDescribe('ebpf_exporter configs run as they are (--config.dir, --config.names)', () => {
  let dir: string;
  let workload: string;
  const main = join(root, 'exporter/main.ts');
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-compat-'));
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/compat.bpf.c'), join(dir, 'compat.bpf.o'));
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/compat.yaml'), join(dir, 'compat.yaml'));
    workload = join(dir, 'bmecompat');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/compat.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports exactly the series their semantics give for a known workload, and detaches on exit', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'compat']);
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    let ids: number[] = [];
    try {
      const held = new Set(programsHeldBy(exporter.proc.pid!));
      ids = loadedPrograms().filter((p) => held.has(p.id) && (p.name === 'on_getppid' || p.name === 'on_getpriority')).map((p) => p.id);
      expect(ids).toHaveLength(2);

      // Before the workload: the arrays' zeros once every job has read; the hash maps are empty.
      let text = '';
      for (let i = 0; i < 100 && !text.includes('ebpf_exporter_compat_percpu_calls_total{'); i++) {
        await sleep(100);
        text = await scrape();
      }
      expect(theirs(text).samples).toEqual(
        [
          'ebpf_exporter_compat_all_calls_total 0',
          'ebpf_exporter_compat_getppid_calls 0',
          ...possibleCpus().flatMap((cpu) => [0, 1].map((slot) => `ebpf_exporter_compat_percpu_calls_total{cpu="${cpu}",slot="${slot}"} 0`)),
        ].sort(),
      );

      // Pinned to CPU 0: the per-CPU map's counts land in CPU 0's slot.
      execFileSync('taskset', ['-c', '0', workload, String(N), ...WHO.map(String)]);
      const want = expected(possibleCpus());
      let got = theirs(text);
      for (let i = 0; i < 150 && JSON.stringify(got.samples) !== JSON.stringify(want); i++) {
        await sleep(100);
        got = theirs(await scrape());
      }
      expect(got.samples).toEqual(want);
      expect(got.types).toEqual(
        [
          'all_calls_total counter',
          'getppid_calls gauge',
          'parity_total counter',
          'percpu_calls_total counter',
          'syscalls_total counter',
          'who_exp2 histogram',
          'who_exp2zero histogram',
          'who_fixed histogram',
          'who_linear histogram',
        ].map((t) => `# TYPE ebpf_exporter_compat_${t}`),
      );
      // The counter whose name lacks _total is said once, where it is written.
      expect(exporter.log()).toContain(`"at":"${join(dir, 'compat.yaml')}:46:13","msg":"metrics.counters[4].name: counter ebpf_exporter_compat_getppid_calls does not end in _total`);
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 60_000);

  it('regexp rewrites a label to the match or its first group, so rows that differ land in one series, summed', async () => {
    copyFileSync(join(dir, 'compat.bpf.o'), join(dir, 'rewrite.bpf.o'));
    // getppid and getpriority are 110 and 140 on x86-64, 173 and 141 on arm64: `^(1)\d\d$` makes both "1".
    writeFileSync(
      join(dir, 'rewrite.yaml'),
      [
        'metrics:',
        '  counters:',
        '    - name: compat_syscalls_total',
        '      help: Calls by comm prefix and the first digit of the syscall number',
        '      labels:',
        '        - name: comm',
        '          size: 16',
        '          decoders:',
        '            - name: string',
        '            - name: regexp',
        '              regexps: ["^(bme).*$"]',
        '        - name: syscall',
        '          size: 8',
        '          decoders:',
        '            - name: uint',
        '            - name: regexp',
        "              regexps: ['^(1)\\d\\d$']",
        '',
      ].join('\n'),
    );
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'rewrite']);
    try {
      execFileSync(workload, [String(N), ...WHO.map(String)]);
      const want = [`ebpf_exporter_compat_syscalls_total{comm="bme",syscall="1"} ${N + WHO.length + 1}`];
      let got: string[] = [];
      for (let i = 0; i < 150 && JSON.stringify(got) !== JSON.stringify(want); i++) {
        await sleep(100);
        got = theirs(await (await fetch(`${exporter.base}/metrics`)).text()).samples;
      }
      expect(got).toEqual(want);
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
  }, 60_000);

  it('convert prints a native config that check accepts against the real object', () => {
    const converted = cli('convert', '--config.dir', dir, '--config.names', 'compat');
    expect(converted.stderr).toBe('');
    expect(converted.status).toBe(0);
    expect(converted.stdout).toContain(`    source: { object: ${join(dir, 'compat.bpf.o')}, map: compat_who_exp2 }\n    btf: false\n`);
    const native = join(dir, 'native.yaml');
    writeFileSync(native, converted.stdout);
    const checked = cli('check', '--config', native);
    expect(checked.stderr).toBe('');
    expect(checked.stdout).toBe(`${native}: ok (9 maps)\n`);
    expect(checked.status).toBe(0);
  }, 60_000);

  it('refuses a config of theirs it cannot run as they would, one positioned line per problem, exit 2', () => {
    copyFileSync(join(dir, 'compat.bpf.o'), join(dir, 'broken.bpf.o'));
    writeFileSync(
      join(dir, 'broken.yaml'),
      [
        'metrics:',
        '  counters:',
        '    - name: compat_syscalls_total',
        '      help: Calls',
        '      labels:',
        '        - name: stack',
        '          size: 20',
        '          padding: 4',
        '          decoders:',
        '            - name: kstack',
        '    - name: compat_parity_total',
        '      help: Parity',
        '      labels:',
        '        - { name: parity, size: 4, decoders: [ { name: uint } ] }',
        'kaddrs: [ bpf_jit_current ]',
        '',
      ].join('\n'),
    );
    const yaml = join(dir, 'broken.yaml');
    for (const command of ['run', 'check']) {
      const r = cli(command, '--config.dir', dir, '--config.names', 'broken', ...(command === 'run' ? ['--web.listen-address', '127.0.0.1:0'] : []));
      expect(r.stderr.trimEnd().split('\n')).toEqual([
        `${yaml}:7:17: metrics.counters[0].labels[0].size: kstack reads 8-byte frame addresses, got size 20, expected a multiple of 8 (8 x the stack depth)`,
        `${yaml}:13:7: metrics.counters[1].labels: the labels take 4 bytes (parity 4) but map "compat_parity_total" has a 8-byte key, expected them to add up to 8`,
        `${yaml}:15:11: kaddrs[0]: broken.bpf.o has no global variable kaddr_bpf_jit_current for the address of bpf_jit_current, expected one declared as const volatile u64 kaddr_bpf_jit_current`,
      ]);
      expect(r.status).toBe(2);
    }
    const missing = cli('run', '--config.dir', dir, '--config.names', 'compat,nothere', '--web.listen-address', '127.0.0.1:0');
    expect(missing.stderr.trimEnd().split('\n')).toEqual([
      `${join(dir, 'nothere.yaml')}: cannot read: ENOENT`,
    ]);
    expect(missing.status).toBe(2);
  }, 60_000);
});
