/**
 * The attach options of object sources besides xdp (see xdp.test.ts): tc and perf_event, as keys
 * (shape, positions) and as a rule across the jobs naming one object.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { problems, jobs } from './support.js';

const SAME = 'expected the same tc in every job naming that object (it is loaded and attached once)';

describe('source.tc', () => {
  it('names an interface and a direction, kept beside the resolved object path, written flow or block', () => {
    const c = parseConfig(jobs('{ object: tc.bpf.o, map: m, tc: { direction: egress, interface: veth0 } }'), '/etc/exporter/config.yaml');
    expect(c.maps[0].source).toEqual({ object: '/etc/exporter/tc.bpf.o', map: 'm', tc: { interface: 'veth0', direction: 'egress' } });
    const block = 'maps:\n  - name: a\n    source:\n      object: tc.bpf.o\n      map: m\n      tc:\n        interface: eth0\n        direction: ingress\n    metrics: [ { name: m_total, type: counter, help: M, value: v } ]\n';
    expect(parseConfig(block, '/c.yaml').maps[0].source).toEqual({ object: '/tc.bpf.o', map: 'm', tc: { interface: 'eth0', direction: 'ingress' } });
  });

  it('is allowed only with object, and is a mapping of both keys, each checked where it is written', () => {
    expect(problems(jobs('{ pinned: /sys/fs/bpf/m, tc: { interface: eth0, direction: ingress } }'))).toEqual(['config.yaml:3:38: maps[0].source.tc: allowed only with object']);
    expect(problems(jobs('{ object: x.bpf.o, map: m, tc: eth0 }'))).toEqual(['config.yaml:3:44: maps[0].source.tc: got the string "eth0", expected a mapping']);
    expect(problems(jobs('{ object: x.bpf.o, map: m, tc: { interface: eth0 } }'))).toEqual(['config.yaml:3:44: maps[0].source.tc: missing required key "direction"']);
    expect(problems(jobs('{ object: x.bpf.o, map: m, tc: { interface: "a/b", direction: inbound } }'))).toEqual([
      'config.yaml:3:57: maps[0].source.tc.interface: invalid value "a/b", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'config.yaml:3:75: maps[0].source.tc.direction: unknown value "inbound", expected one of ingress, egress',
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: m, tc: { interface: eth0, direction: ingress, prio: 1 } }'))).toEqual([
      'config.yaml:3:83: maps[0].source.tc.prio: unknown key, expected one of interface, direction',
    ]);
  });

  it('must agree across the jobs naming one object, and may sit beside xdp', () => {
    expect(problems(jobs('{ object: x.bpf.o, map: a, tc: { interface: eth0, direction: ingress } }', '{ object: x.bpf.o, map: b, tc: { interface: eth0, direction: egress } }', '{ object: x.bpf.o, map: c }'))).toEqual([
      `config.yaml:6:44: maps[1].source.tc: job "j1" attaches the tc programs of x.bpf.o to eth0 egress, but job "j0" (maps[0], line 2) attaches them to eth0 ingress, ${SAME}`,
      `config.yaml:9:13: maps[2].source: job "j2" names x.bpf.o without tc, but job "j0" (maps[0], line 2) attaches its tc programs to eth0 ingress, ${SAME}`,
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: a, xdp: eth1, tc: { interface: eth0, direction: ingress } }', '{ object: ./x.bpf.o, map: b, tc: { direction: ingress, interface: eth0 }, xdp: eth1 }'))).toEqual([]);
    // Written wrong: reported once, not also as a disagreement.
    expect(problems(jobs('{ object: x.bpf.o, map: a, tc: { interface: eth0, direction: ingress } }', '{ object: x.bpf.o, map: b, tc: { interface: eth0 } }'))).toEqual([
      'config.yaml:6:44: maps[1].source.tc: missing required key "direction"',
    ]);
  });
});

describe('source.perf_event', () => {
  it('names an event and exactly one of frequency and period', () => {
    const c = parseConfig(jobs('{ object: p.bpf.o, map: m, perf_event: { frequency: 99, event: cpu-clock } }', '{ object: q.bpf.o, map: m, perf_event: { event: instructions, period: 1000000 } }'), '/c.yaml');
    expect(c.maps.map((m) => m.source)).toEqual([
      { object: '/p.bpf.o', map: 'm', perf_event: { event: 'cpu-clock', frequency: 99 } },
      { object: '/q.bpf.o', map: 'm', perf_event: { event: 'instructions', period: 1000000 } },
    ]);
    // Keys in one order, as written or not: sources compare as JSON.
    expect(Object.keys((c.maps[0].source as { perf_event: object }).perf_event)).toEqual(['event', 'frequency']);
  });

  it('refuses an unknown event, both or neither of frequency and period, and zero', () => {
    expect(problems(jobs('{ object: x.bpf.o, map: m, perf_event: { event: cpu-clock } }'))).toEqual(['config.yaml:3:52: maps[0].source.perf_event: none of frequency, period is given, expected exactly one']);
    expect(problems(jobs('{ object: x.bpf.o, map: m, perf_event: { event: cycles, frequency: 99, period: 10 } }'))).toEqual([
      'config.yaml:3:61: maps[0].source.perf_event.event: unknown value "cycles", expected one of cpu-cycles, instructions, cache-references, cache-misses, branch-instructions, branch-misses, bus-cycles, stalled-cycles-frontend, stalled-cycles-backend, ref-cycles, cpu-clock, task-clock, page-faults, context-switches, cpu-migrations, minor-faults, major-faults, alignment-faults, emulation-faults',
      'config.yaml:3:84: maps[0].source.perf_event.period: conflicts with frequency, expected exactly one of frequency, period',
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: m, perf_event: { event: cpu-clock, frequency: 0 } }'))).toEqual([
      'config.yaml:3:83: maps[0].source.perf_event.frequency: 0 is out of range, expected an integer of at least 1',
    ]);
    expect(problems(jobs('{ name: m, perf_event: { event: cpu-clock, frequency: 99 } }'))).toEqual(['config.yaml:3:24: maps[0].source.perf_event: allowed only with object']);
  });

  it('must agree across the jobs naming one object', () => {
    expect(problems(jobs('{ object: x.bpf.o, map: a, perf_event: { event: cpu-clock, frequency: 99 } }', '{ object: x.bpf.o, map: b, perf_event: { period: 1000000, event: cpu-clock } }', '{ object: x.bpf.o, map: c, perf_event: { event: cpu-clock, frequency: 99 } }'))).toEqual([
      'config.yaml:6:52: maps[1].source.perf_event: job "j1" attaches the perf_event programs of x.bpf.o to cpu-clock every 1000000 events, but job "j0" (maps[0], line 2) attaches them to cpu-clock at 99 Hz, expected the same perf_event in every job naming that object (it is loaded and attached once)',
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: a, perf_event: { event: cpu-clock, frequency: 99 } }', '{ object: x.bpf.o, map: b, perf_event: { event: cpu-clock } }'))).toEqual([
      'config.yaml:6:52: maps[1].source.perf_event: none of frequency, period is given, expected exactly one',
    ]);
  });
});

describe('source.kaddrs', () => {
  it('lists kernel symbols, kept beside the resolved object path; an empty list is no list', () => {
    const c = parseConfig(jobs('{ object: k.bpf.o, map: m, kaddrs: [ schedule, vfs_read ] }', '{ object: j.bpf.o, map: m, kaddrs: [] }'), '/c.yaml');
    expect(c.maps.map((m) => m.source)).toEqual([
      { object: '/k.bpf.o', map: 'm', kaddrs: ['schedule', 'vfs_read'] },
      { object: '/j.bpf.o', map: 'm' },
    ]);
  });

  it('is allowed only with object, names symbols, and must agree across the jobs naming one object', () => {
    expect(problems(jobs('{ pinned: /sys/fs/bpf/m, kaddrs: [ schedule ] }'))).toEqual(['config.yaml:3:38: maps[0].source.kaddrs: allowed only with object']);
    expect(problems(jobs('{ object: x.bpf.o, map: m, kaddrs: [ "a b" ] }'))).toEqual([
      'config.yaml:3:50: maps[0].source.kaddrs[0]: invalid value "a b", expected a kernel symbol name as /proc/kallsyms lists it (letters, digits, _, . and $)',
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: a, kaddrs: [ schedule ] }', '{ object: x.bpf.o, map: b, kaddrs: [ vfs_read ] }'))).toEqual([
      'config.yaml:6:48: maps[1].source.kaddrs: job "j1" loads x.bpf.o with kaddrs vfs_read, but job "j0" (maps[0], line 2) loads it with kaddrs schedule, expected the same kaddrs in every job naming that object (it is loaded and attached once)',
    ]);
  });
});

describe('events (a perf_event_array counted by its events)', () => {
  const job = (extra: string) => `maps:\n  - name: e\n    source: { object: e.bpf.o, map: m }\n${extra}    metrics: [ { name: e_total, type: counter, help: E, value: v, labels: [ { name: comm, from: comm } ] } ]\n`;
  it('takes a flush duration (default 1h) with the key written', () => {
    const c = parseConfig(job('    events: { flush: 10m }\n    key: [ { name: comm, type: "char[16]" } ]\n    value: [ { name: v, type: u64 } ]\n'), '/c.yaml');
    expect(c.maps[0].events).toEqual({ flush: 600_000 });
    expect(parseConfig(job('    events: {}\n    key: [ { name: comm, type: "char[16]" } ]\n    value: [ { name: v, type: u64 } ]\n'), '/c.yaml').maps[0].events).toEqual({ flush: 3_600_000 });
  });

  it('needs the key written and mode read', () => {
    expect(problems(job('    events: { flush: 1h }\n    mode: drain\n    value: [ { name: v, type: u64 } ]\n'))).toEqual([
      'config.yaml:4:13: maps[0].events: events needs the key written: the fields each event\'s first bytes are read as',
      'config.yaml:5:11: maps[0].mode: events are counted as they come, not drained, expected mode: read',
    ]);
  });
});
