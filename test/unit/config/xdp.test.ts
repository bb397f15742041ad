import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/parse.js';
import { problems, jobs } from './support.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('source.xdp', () => {
  it('names the interface of an object source, kept beside the resolved object path', () => {
    const c = parseConfig(jobs('{ object: xdp.bpf.o, map: packets, xdp: veth0 }', '{ object: ./xdp.bpf.o, map: drops, xdp: veth0 }', '{ object: other.bpf.o, map: m }'), '/etc/exporter/config.yaml');
    expect(c.maps.map((m) => m.source)).toEqual([
      { object: '/etc/exporter/xdp.bpf.o', map: 'packets', xdp: 'veth0' },
      { object: '/etc/exporter/xdp.bpf.o', map: 'drops', xdp: 'veth0' },
      { object: '/etc/exporter/other.bpf.o', map: 'm' },
    ]);
    // Without xdp the key is absent, not undefined: sources compare and serialize as written.
    expect(Object.keys(c.maps[2].source)).toEqual(['object', 'map']);
  });

  it('is allowed only with object', () => {
    expect(problems(jobs('{ pinned: /sys/fs/bpf/m, xdp: eth0 }'))).toEqual(['config.yaml:3:38: maps[0].source.xdp: allowed only with object']);
  });

  it('must be a name the kernel could give an interface', () => {
    const names = ['averyveryverylongname', 'a/b', 'eth0:1', '"eth 0"', '.', '..', '""'];
    const lines = names.flatMap((n) => problems(jobs(`{ object: x.bpf.o, map: m, xdp: ${n} }`)));
    expect(lines.map((l) => l.replace(/^config\.yaml:\d+:\d+: maps\[0\]\.source\.xdp: /, ''))).toEqual([
      'interface name "averyveryverylongname" is longer than 15 characters (the kernel\'s limit), expected a network interface name',
      'invalid value "a/b", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'invalid value "eth0:1", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'invalid value "eth 0", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'invalid value ".", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'invalid value "..", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
      'invalid value "", expected a network interface name (1 to 15 characters, none of them /, : or blank)',
    ]);
    expect(problems(jobs('{ object: x.bpf.o, map: m, xdp: enp0s31f6 }', '{ object: y.bpf.o, map: m, xdp: veth-bme0.100 }'))).toEqual([]);
  });

  it('must agree across the jobs naming one object, however its path is spelt', () => {
    const abs = '/etc/exporter/xdp.bpf.o';
    expect(problems(jobs('{ object: xdp.bpf.o, map: a, xdp: eth0 }', `{ object: ${abs}, map: b, xdp: eth1 }`), '/etc/exporter/config.yaml')).toEqual([
      `/etc/exporter/config.yaml:6:61: maps[1].source.xdp: job "j1" attaches the XDP programs of ${abs} to eth1, but job "j0" (maps[0], line 2) attaches them to eth0, expected the same xdp in every job naming that object (it is loaded and attached once)`,
    ]);
    // The first job sets what the others must say, with or without xdp.
    expect(problems(jobs('{ object: xdp.bpf.o, map: a }', '{ object: xdp.bpf.o, map: b, xdp: eth1 }'))).toEqual([
      'config.yaml:6:47: maps[1].source.xdp: job "j1" attaches the XDP programs of xdp.bpf.o to eth1, but job "j0" (maps[0], line 2) names it without xdp, expected the same xdp in every job naming that object (it is loaded and attached once)',
    ]);
    // Different objects may attach to different interfaces.
    expect(problems(jobs('{ object: a.bpf.o, map: a, xdp: eth0 }', '{ object: b.bpf.o, map: b, xdp: eth1 }'))).toEqual([]);
  });

  it('written wrong is reported once, not also as a disagreement', () => {
    expect(problems(jobs('{ object: xdp.bpf.o, map: a, xdp: eth0 }', '{ object: xdp.bpf.o, map: b, xdp: [eth0] }'))).toEqual([
      'config.yaml:6:47: maps[1].source.xdp: got a list, expected a network interface name (1 to 15 characters, none of them /, : or blank)',
    ]);
  });

  it('is in the XDP example, as a placeholder to change, on a drained map', () => {
    const c = loadConfig(join(root, 'config/examples/xdp-packets.yaml'));
    expect(c.maps.map((m) => [m.name, m.source, m.mode])).toEqual([
      ['xdp_packets', { object: join(root, 'config/examples/xdp-packets.bpf.o'), map: 'packets', xdp: 'veth-bme0' }, 'drain'],
    ]);
    expect(c.maps[0].metrics.map((m) => [m.name, m.value, m.labels.map((l) => [l.name, l.from, l.decoder])])).toEqual([
      ['xdp_packets_total', 'packets', [['source', 'key', 'inet_ip']]],
      ['xdp_bytes_total', 'bytes', [['source', 'key', 'inet_ip']]],
    ]);
  });
});
