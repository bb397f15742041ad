/**
 * The structs the binding builds byte by byte, compared with what C makes of the system's headers
 * (linux/perf_event.h, bpf/libbpf.h): a fixture program compiled here prints them. Needs cc and
 * libbpf-dev; without them the test skips loudly, and fails under REQUIRE_BPF=1 (CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERF_EVENTS, perfEventAttr } from '../../../src/bpf/perf-event-attr.js';
import { BPF_TC_EGRESS, BPF_TC_INGRESS, tcHook, tcOpts, tcOptsResult } from '../../../src/bpf/tc-structs.js';

const source = new URL('../../fixtures/native/struct-layouts.c', import.meta.url).pathname;

/** Why the fixture cannot be built here, or undefined when it can. */
function missing(): string | undefined {
  const cc = spawnSync('cc', ['-fsyntax-only', source], { stdio: 'pipe' });
  if (cc.error !== undefined) return 'cc not found (Debian package gcc)';
  if (cc.status !== 0) return `the fixture does not compile (headers of linux-libc-dev and libbpf-dev?): ${cc.stderr.toString().split('\n')[0]}`;
  return undefined;
}

const why = missing();
const layoutDescribe = why === undefined ? describe : process.env.REQUIRE_BPF === '1' ? describe : describe.skip;
if (why !== undefined && process.env.REQUIRE_BPF !== '1') console.warn(`SKIPPING struct layout tests: ${why}; set REQUIRE_BPF=1 to fail instead`);

layoutDescribe('structs built by hand, against C', () => {
  let dir: string;
  let c: Map<string, string>;

  beforeAll(() => {
    if (why !== undefined) throw new Error(`struct layouts need C: ${why}`);
    dir = mkdtempSync(join(tmpdir(), 'bme-layouts-'));
    execFileSync('cc', ['-o', join(dir, 'layouts'), source], { stdio: 'pipe' });
    const lines = execFileSync(join(dir, 'layouts')).toString().trim().split('\n');
    c = new Map(lines.map((l) => [l.slice(0, l.indexOf(' ')) + (l.startsWith('event ') ? ` ${l.split(' ')[1]}` : ''), l.slice(l.indexOf(' ') + 1)]));
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('struct perf_event_attr, sampling at a frequency or every N events, opened disabled', () => {
    expect(perfEventAttr({ event: 'cpu-clock', frequency: 99 }).toString('hex')).toBe(c.get('attr-frequency'));
    expect(perfEventAttr({ event: 'instructions', period: 1000003 }).toString('hex')).toBe(c.get('attr-period'));
  });

  it('every event name has the type and config of its PERF_COUNT_* constant', () => {
    for (const [name, [type, config]] of Object.entries(PERF_EVENTS)) expect(`${name} ${type} ${config}`, name).toBe(c.get(`event ${name}`));
    expect([...c.keys()].filter((k) => k.startsWith('event ')).length).toBe(Object.keys(PERF_EVENTS).length);
  });

  it('struct bpf_tc_hook and struct bpf_tc_opts, and where the kernel\'s handle and priority are read back', () => {
    expect(tcHook(7, BPF_TC_INGRESS | BPF_TC_EGRESS).toString('hex')).toBe(c.get('hook-clsact'));
    expect(tcHook(7, BPF_TC_EGRESS).toString('hex')).toBe(c.get('hook-egress'));
    expect(tcOpts({ progFd: 42 }).toString('hex')).toBe(c.get('opts-attach'));
    const detach = tcOpts({ handle: 3, priority: 49152 });
    expect(detach.toString('hex')).toBe(c.get('opts-detach'));
    expect(tcOptsResult(Buffer.from(c.get('opts-detach')!, 'hex'))).toEqual({ handle: 3, priority: 49152 });
  });
});
