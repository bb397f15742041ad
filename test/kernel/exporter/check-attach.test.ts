/**
 * `check` against real objects whose programs name attach points this kernel does not have (a
 * tracepoint, a raw tracepoint, a kernel function, a uprobe's binary, an interface, a perf event
 * frequency above the kernel's limit): one positioned line each, exit 2, where it used to say ok and
 * `run` then failed the job (map_up 0, ENOENT). Objects whose targets exist still pass, and `run`
 * says of a missing target what `check` said.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelFunctionExists, ObjectRegistry } from '../../../src/bpf/object.js';
import { sample, sleep, spawnExporter } from '../../e2e/support.js';
import { compileBpf, kernelDescribe } from '../support.js';

const main = fileURLToPath(new URL('../../../exporter/main.ts', import.meta.url));
const fixture = fileURLToPath(new URL('../../fixtures/bpf/attach-targets.bpf.c', import.meta.url));
const check = (config: string) => spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--config', config], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'info' } });

kernelDescribe('check and the attach targets of the programs it loads', () => {
  let dir: string;
  /** Objects by name: each the fixture built with its own section (or XDP / perf_event program). */
  const objects: Record<string, string> = {};
  const builds: Record<string, string[]> = {
    tracepoint: ['-DSECTION="tp/syscalls/sys_enter_bme_no_such"'],
    raw_tracepoint: ['-DSECTION="raw_tp/bme_no_such_tracepoint"'],
    kprobe: ['-DSECTION="kprobe/bme_no_such_function"'],
    uprobe: ['-DSECTION="uprobe//nonexistent/bme/binary:main"'],
    xdp: ['-DWITH_XDP'],
    perf_event: ['-DWITH_PERF_EVENT'],
    tracepoint_ok: ['-DSECTION="tp/syscalls/sys_enter_getppid"'],
    raw_tracepoint_ok: ['-DSECTION="raw_tp/sys_enter"'],
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-check-attach-'));
    for (const [name, args] of Object.entries(builds)) {
      objects[name] = join(dir, `${name}.bpf.o`);
      compileBpf(fixture, objects[name], args);
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A config of one map entry per source (4 lines each: `source:` of entry i is on line 4 + 4i). */
  function config(file: string, sources: string[]): string {
    const path = join(dir, file);
    writeFileSync(
      path,
      `interval: 500ms\nmaps:\n${sources.map((s, i) => `  - name: m${i}\n    source: { ${s} }\n    metrics:\n      - { name: m${i}_total, type: counter, help: h, value: value }\n`).join('')}`,
    );
    return path;
  }

  it('refuses each program whose target is missing in one positioned line with the program and ENOENT, exit 2', () => {
    const maxRate = Number(readFileSync('/proc/sys/kernel/perf_event_max_sample_rate', 'utf8'));
    const cpu = Number(/^\d+/.exec(readFileSync('/sys/devices/system/cpu/online', 'utf8'))![0]);
    const file = config('missing.yaml', [
      `object: ${objects.tracepoint}, map: counts`,
      `object: ${objects.raw_tracepoint}, map: counts`,
      `object: ${objects.kprobe}, map: counts`,
      `object: ${objects.uprobe}, map: counts`,
      `object: ${objects.xdp}, map: counts, xdp: bmenosuch0`,
      `object: ${objects.perf_event}, map: counts, perf_event: { event: cpu-clock, frequency: ${maxRate + 1} }`,
      `object: ${objects.tracepoint_ok}, map: counts`,
      `object: ${objects.raw_tracepoint_ok}, map: counts`,
    ]);
    const r = check(file);
    const at = (i: number) => `${file}:${4 + 4 * i}:5: maps[${i}].source: object ${Object.values(objects)[i]}: `;
    const kprobes = existsSync('/sys/bus/event_source/devices/kprobe') || existsSync('/sys/kernel/tracing/kprobe_events') || existsSync('/sys/kernel/debug/tracing/kprobe_events');
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `${at(0)}attach program on_target (section tp/syscalls/sys_enter_bme_no_such) failed: ENOENT (no tracepoint syscalls/sys_enter_bme_no_such; /sys/kernel/tracing/available_events lists them)`,
      `${at(1)}attach program on_target (section raw_tp/bme_no_such_tracepoint) failed: ENOENT (no raw tracepoint bme_no_such_tracepoint in this kernel or its loaded modules (their BTF, /sys/kernel/btf, names each as btf_trace_NAME))`,
      `${at(2)}attach program on_target (section kprobe/bme_no_such_function) failed: ENOENT (${
        kprobes
          ? 'no kernel function bme_no_such_function to probe; /proc/kallsyms lists them'
          : 'this kernel has no kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs (built without CONFIG_KPROBES)'
      })`,
      `${at(3)}attach program on_target (section uprobe//nonexistent/bme/binary:main) failed: ENOENT (the binary or its function named in the section was not found)`,
      `${at(4)}attach XDP program on_xdp to interface bmenosuch0 failed: ENOENT (no network interface named bmenosuch0 in this network namespace)`,
      `${at(5)}attach perf_event program on_sample to cpu-clock at ${maxRate + 1} Hz on CPU ${cpu} failed: EINVAL (frequency ${maxRate + 1} Hz is above kernel.perf_event_max_sample_rate (${maxRate}))`,
    ]);
    expect(r.status).toBe(2);
  });

  it('passes objects whose targets exist', () => {
    const file = config('present.yaml', [`object: ${objects.tracepoint_ok}, map: counts`, `object: ${objects.raw_tracepoint_ok}, map: counts`]);
    const r = check(file);
    expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, `${file}: ok (2 maps)`, '']);
  });

  it('says what run then says of the same program: the job fails with ENOENT', async () => {
    const file = config('run.yaml', [`object: ${objects.tracepoint}, map: counts`]);
    const said = check(file).stderr.trim();
    const e = await spawnExporter(file);
    try {
      let text = '';
      for (let i = 0; i < 100 && sample(text, 'bpf_map_exporter_map_up{map="m0"}') === undefined; i++) {
        text = await (await fetch(`${e.base}/metrics`)).text();
        await sleep(50);
      }
      expect(sample(text, 'bpf_map_exporter_map_up{map="m0"}')).toBe(0);
      // The line after FILE:LINE:COLUMN: maps[0].source: is the failure run logs.
      const failure = said.slice(said.indexOf('object '));
      expect(e.log()).toContain(`"msg":${JSON.stringify(failure)}`);
    } finally {
      await e.stop();
    }
  });

  it('finds kernel functions in /proc/kallsyms', () => {
    expect(kernelFunctionExists('schedule')).toBe(true);
    expect(kernelFunctionExists('bme_no_such_function')).toBe(false);
  });
});

kernelDescribe('a uprobe or usdt section whose binary is not an ELF file', () => {
  it('says so, whatever libbpf answered (a script or a wrapper such as a pyenv shim)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bme-notelf-'));
    try {
      const script = join(dir, 'bmewrapper');
      writeFileSync(script, '#!/bin/sh\nexec /bin/true "$@"\n', { mode: 0o755 });
      const hint = (file: string, name: string) => `${file}${file === name ? '' : ` (where ${name} is found on PATH)`} is not an ELF file: a script or a wrapper (a pyenv shim, say) is not the program; name the real binary by its full path`;
      const cases: [section: string, errno: string, name: string][] = [
        [`uprobe/${script}:main`, 'LIBBPF_ERRNO__FORMAT', script],
        [`usdt/${script}:prov:probe`, 'ESRCH', script],
      ];
      for (const [section, errno, name] of cases) {
        const object = join(dir, 'o.bpf.o');
        compileBpf(fixture, object, [`-DSECTION="${section}"`]);
        const objects = new ObjectRegistry();
        try {
          expect(() => objects.get(object, {})).toThrow(`object ${object}: attach program on_target (section ${section}) failed: ${errno} (${hint(script, name)})`);
        } finally {
          objects.closeAll();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a usdt section naming a file that is not there says which, and from where a relative path is looked for', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bme-nousdt-'));
    try {
      for (const [binary, where] of [[join(dir, 'demo'), ''], ['./tracing/demos/sched/demo', ` (a path relative to the exporter's working directory, ${process.cwd()})`]]) {
        const section = `usdt/${binary}:ebpf_exporter:probe`;
        const object = join(dir, 'o.bpf.o');
        compileBpf(fixture, object, [`-DSECTION="${section}"`]);
        const objects = new ObjectRegistry();
        try {
          // libbpf answers ENOENT or ESRCH, by the path it took.
          expect(() => objects.get(object, {})).toThrow(`(section ${section}) failed: `);
          expect(() => objects.get(object, {})).toThrow(` (no file ${binary}${where}: the program whose USDT probes the section names)`);
        } finally {
          objects.closeAll();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
