/**
 * ebpf_exporter's tracing format on the real kernel: a program of ours in the spirit of their
 * exec-trace example (test/fixtures/ebpf-exporter/exec-trace.bpf.c and .yaml) sends a span through
 * a ring buffer for each process of a traced tree when it exits. `run --config.dir DIR
 * --config.names exec-trace` reads the ring buffer and sends the spans over OTLP to a receiver in
 * this test, which decodes them with the OTel project's definitions.
 *
 * The workload is a copy of bash at a path of this run's own (the trace's root) that runs /bin/true
 * twice: three spans, the two children of the root. The program also keeps every span it sent in a
 * hash map, which the test reads: each span received must be the one the kernel sent, field by field
 * (ids, parent, name, pid, the duration to the nanosecond, the start made wall time).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wallMinusMonotonicNs } from '../../src/bpf/libbpf.js';
import { kernelDescribe } from '../kernel/support.js';
import { httpReceiver, SPAN_KIND_INTERNAL, type WireGroup, type WireSpan } from '../otlp-traces.js';
import { mapHeldBy, readValues, spanHead, spansOf, type SentHead } from './spans.js';
import { buildExamples, root, sample, sleep, startExporter } from './support.js';

const ARCH = { x64: 'x86', arm64: 'arm64' }[process.arch as string];

/** A span as the kernel sent it (struct exec_span). */
interface Sent extends SentHead {
  exe: string;
  pid: number;
}

const readSent = (mapId: number): Sent[] =>
  readValues(mapId, 120, (v) => {
    const exe = v.subarray(48, 112);
    return { ...spanHead(v), exe: exe.subarray(0, exe.indexOf(0)).toString(), pid: v.readUInt32LE(112) };
  });

kernelDescribe('ebpf_exporter tracing spans from a ring buffer', () => {
  let dir: string;
  let bash: string;

  beforeAll(() => {
    buildExamples(); // build/bpf/vmlinux.h
    dir = mkdtempSync(join(tmpdir(), 'bme-trace-'));
    bash = join(dir, 'bash');
    copyFileSync('/bin/bash', bash);
    execFileSync('chmod', ['755', bash]);
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${ARCH}`, `-DROOT_EXE="${bash}"`, `-I${join(root, 'build/bpf')}`, '-c', join(root, 'test/fixtures/ebpf-exporter/exec-trace.bpf.c'), '-o', join(dir, 'exec-trace.bpf.o')], { stdio: 'pipe' });
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/exec-trace.yaml'), join(dir, 'exec-trace.yaml'));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sends each span the kernel sent, exact: ids, parentage, name, duration, attributes, wall time', async () => {
    const rx = await httpReceiver();
    const exporter = await startExporter('', { OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '100' }, [], ['--config.dir', dir, '--config.names', 'exec-trace']);
    try {
      const run = spawnSync(bash, ['-c', '/bin/true one; /bin/true two; :']);
      expect(run.status).toBe(0);
      const pid = run.pid!;
      let mine: { group: WireGroup; span: WireSpan }[] = [];
      for (let i = 0; i < 100; i++) {
        const all = spansOf(rx);
        const rootSpan = all.find((s) => s.span.attributes.pid === String(pid) && s.span.name === bash);
        mine = rootSpan === undefined ? [] : all.filter((s) => s.span.traceId === rootSpan.span.traceId);
        if (mine.length >= 3) break;
        await sleep(100);
      }
      expect(mine.map((s) => s.span.name).sort(), exporter.log()).toEqual(['/bin/true', '/bin/true', bash]);
      const offset = wallMinusMonotonicNs();
      const sent = new Map(readSent(mapHeldBy(exporter.proc.pid!, 'exec_sent')).map((s) => [s.spanId, s]));
      const rootSpan = mine.find((s) => s.span.name === bash)!.span;
      for (const { group, span } of mine) {
        const k = sent.get(span.spanId);
        expect(k, `span ${span.spanId} was sent by the kernel`).toBeDefined();
        expect(span.traceId).toBe(k!.traceId);
        expect(span.parentSpanId).toBe(/^0+$/.test(k!.parentSpanId) ? undefined : k!.parentSpanId);
        expect(span.name).toBe(k!.exe);
        expect(span.kind).toBe(SPAN_KIND_INTERNAL);
        expect(span.attributes).toEqual({ pid: String(k!.pid), 'ebpf_exporter.config': 'exec-trace' });
        expect(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano)).toBe(k!.durationNs);
        // The start made wall time with the exporter's offset; ours, taken now, differs by the clocks' drift alone.
        const drift = BigInt(span.startTimeUnixNano) - (k!.startNs + offset);
        expect(drift < 0n ? -drift : drift).toBeLessThan(1_000_000n);
        expect(group.resource['service.name']).toBe('exec-trace');
      }
      // The tree: the root has no parent, both children are its own, inside its time.
      expect(rootSpan.parentSpanId).toBeUndefined();
      expect(rootSpan.attributes.pid).toBe(String(pid));
      for (const { span } of mine.filter((s) => s.span !== rootSpan)) {
        expect(span.parentSpanId).toBe(rootSpan.spanId);
        expect(BigInt(span.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(rootSpan.startTimeUnixNano));
        expect(BigInt(span.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(rootSpan.endTimeUnixNano));
      }
      // The exporter's counts follow at the job's next read (every 5 s, as their maps' jobs).
      let text = '';
      for (let i = 0; i < 120 && !((sample(text, 'bpf_map_exporter_spans_total{result="exported"}') ?? 0) >= 3); i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, 'bpf_map_exporter_ringbuf_records_total{map="exec-trace/exec_spans"}')).toBeGreaterThanOrEqual(3);
      expect(sample(text, 'bpf_map_exporter_spans_total{result="exported"}')).toBeGreaterThanOrEqual(3);
      expect(text).toContain('bpf_map_exporter_map_up{map="exec-trace/exec_spans"} 1');
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
      await rx.close();
    }
  });

  it('convert prints a native spans: job that check accepts against the real object', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'exporter/main.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const converted = cli('convert', '--config.dir', dir, '--config.names', 'exec-trace');
    expect(converted.stderr).toBe('');
    expect(converted.stdout).toContain('    spans:\n      name: exec\n      service: exec-trace\n');
    expect(converted.stdout).toContain('        - { name: span_name, from: span_name, decoder: string }\n');
    const native = join(dir, 'native-trace.yaml');
    writeFileSync(native, converted.stdout);
    const checked = cli('check', '--config', native);
    expect(checked.stderr).toBe('');
    expect(checked.stdout).toBe(`${native}: ok (1 map)\n`);
  }, 60_000);
});
