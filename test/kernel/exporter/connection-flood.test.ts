/**
 * `run` under a low fd limit (prlimit --nofile=256:256) and a flood of idle TCP connections, more
 * than the limit, from another address (127.0.0.2, as from another host) and kept up (each one the
 * exporter closes is opened again): /healthz and /metrics still answer on new connections, the
 * inventory still opens every map, the exporter keeps descriptors free, and it logs no line per
 * connection. (With no cap, 1,500 idle connections under a 1,024 limit failed 209
 * of 290 probes, reset scrapes and failed the inventory with EMFILE.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sample, sleep, spawnExporter, type Exporter } from '../../e2e/support.js';
import { get } from '../../server/support.js';
import { kernelDescribe } from '../support.js';

const FD_LIMIT = 256;
const FLOOD = 400;

kernelDescribe('run under a flood of idle connections', () => {
  let dir: string;
  let exporter: (Exporter & { port: number }) | undefined;
  const sockets = new Set<Socket>();
  let flooding = false;
  let opened = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-flood-'));
    writeFileSync(join(dir, 'config.yaml'), 'interval: 1s\ninventory: true\nmaps: []\n');
  });

  afterAll(async () => {
    flooding = false;
    for (const s of sockets) s.destroy();
    await exporter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One idle connection (it never sends a byte); opened again when the exporter closes it, while flooding. */
  function idle(port: number): Promise<void> {
    return new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      opened++;
      sockets.add(s);
      s.on('error', () => {});
      s.once('connect', () => resolve());
      s.once('close', () => {
        sockets.delete(s);
        resolve();
        // Bounded: at most 20 flood connections per probe the test sends, give or take.
        if (flooding && opened < 20 * FLOOD) void idle(port);
      });
    });
  }

  const fdsOf = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

  it(`answers /healthz and /metrics and keeps the inventory up with ${FLOOD} idle connections under a ${FD_LIMIT} fd limit`, async () => {
    exporter = await spawnExporter(join(dir, 'config.yaml'), { wrap: ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`] });
    const { base, port, proc } = exporter;
    // Ready: the inventory has run once before the flood.
    for (let i = 0; i < 100 && (await fetch(`${base}/readyz`)).status !== 200; i++) await sleep(50);

    flooding = true;
    await Promise.all(Array.from({ length: FLOOD }, () => idle(port)));
    const floodStarted = Date.now();

    const statuses: (number | string)[] = [];
    let maxFds = 0;
    let inventoryUp: number | undefined;
    // Probes and scrapes while the flood is kept up, across more than one inventory cycle, each on
    // a new connection as the kubelet's probes are.
    for (let i = 0; i < 30; i++) {
      const path = i % 5 === 4 ? '/metrics' : '/healthz';
      const r = await get(`${base}${path}`);
      statuses.push(r.status ?? r.error ?? 'no answer');
      if (path === '/metrics' && r.body !== undefined && Date.now() - floodStarted > 1_500) inventoryUp = sample(r.body, 'bpf_map_exporter_inventory_up');
      maxFds = Math.max(maxFds, fdsOf(proc.pid!));
      await sleep(100);
    }
    flooding = false;

    expect(statuses).toEqual(statuses.map(() => 200));
    // The inventory opened every map while the flood held its connections.
    expect(inventoryUp).toBe(1);
    // The cap: half of the descriptors the daemon did not hold, so a quarter of the limit at least stays free.
    const cap = Number(/"maxConnections":(\d+)/.exec(exporter.log())?.[1]);
    expect(cap).toBeGreaterThanOrEqual(100);
    expect(cap).toBeLessThanOrEqual(FD_LIMIT / 2);
    expect(maxFds).toBeLessThanOrEqual(FD_LIMIT - FD_LIMIT / 4);
    // The flood was more than the limit, and most of it was closed to make room.
    expect(opened).toBeGreaterThan(FD_LIMIT);

    // Nothing alarming, and nothing per connection: no error line, no EMFILE, one warning about the cap.
    const lines = exporter.log().trim().split('\n');
    expect(exporter.log()).not.toContain('EMFILE');
    expect(lines.filter((l) => /"level":"(error|fatal)"/.test(l))).toEqual([]);
    const warnings = lines.filter((l) => /"level":"warn"/.test(l));
    expect(warnings.length).toBeLessThanOrEqual(1);
    expect(lines.length).toBeLessThan(10);

    for (const s of sockets) s.destroy();
    expect(await exporter.stop()).toBe(0);
  }, 60_000);
});
