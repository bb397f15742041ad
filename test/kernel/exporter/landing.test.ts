/**
 * The landing page as a person sees it: the daemon with one map it reads and one it cannot find,
 * opened in a real headless browser (Debian's chromium). The DOM the browser built is checked row
 * by row, and a screenshot of the page is taken at a known size.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { spawnExporter, type Exporter } from '../../e2e/support.js';
import { kernelDescribe, pinDir } from '../support.js';

/** chromium headless as root (no sandbox), with its own profile; what it prints on stdout. */
function chromium(profile: string, args: string[]): Buffer {
  return execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args], { timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
}

kernelDescribe('the landing page in a browser', () => {
  let pins: string;
  let dir: string;
  let map: BpfMap;
  let exporter: Exporter & { port: number };

  beforeAll(async () => {
    pins = pinDir('landing');
    dir = mkdtempSync(join(tmpdir(), 'bme-landing-'));
    map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
    map.updateBatch(new Uint8Array(new Uint32Array([1, 2, 3]).buffer), new Uint8Array(new BigUint64Array([10n, 20n, 30n]).buffer), 3);
    map.pin(`${pins}/flows`);
    const config = join(dir, 'landing.yaml');
    writeFileSync(
      config,
      `interval: 1s
maps:
  - name: flows
    source: { pinned: ${pins}/flows }
    key: [{ name: port, type: u32 }]
    value: [{ name: bytes, type: u64 }]
    metrics: [{ name: flow_bytes_total, type: counter, help: Bytes, value: bytes, labels: [{ name: port, from: port }] }]
  - name: <gone>
    source: { pinned: ${pins}/gone }
    key: [{ name: port, type: u32 }]
    value: [{ name: bytes, type: u64 }]
    metrics: [{ name: gone_bytes_total, type: counter, help: Bytes, value: bytes }]
`,
    );
    exporter = await spawnExporter(config);
    for (let i = 0; i < 100 && (await fetch(`${exporter.base}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  }, 60_000);

  afterAll(async () => {
    expect(await exporter?.stop()).toBe(0);
    map?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows each job: up with its entries and last read, or down with its errno and why', () => {
    const dom = chromium(join(dir, 'profile-dom'), ['--dump-dom', `${exporter.base}/`]).toString('utf8');
    expect(dom).toContain('<h1>bpf-map-exporter ');
    expect(dom).toContain('<a href="metrics">/metrics</a>');
    const rows = [...dom.matchAll(/<tr><th scope="row">([^<]*)<\/th>(.*?)<\/tr>/g)].map((m) => [m[1], m[2]]);
    expect(rows.map((r) => r[0])).toEqual(['&lt;gone&gt;', 'flows']);
    const [gone, flows] = rows.map((r) => [...r[1].matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1]));
    expect(flows.slice(0, 2)).toEqual(['up', '3 / 16']);
    expect(flows[2]).toMatch(/^<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">\d+ s ago<\/time>$/);
    expect(Number(flows[3])).toBeGreaterThanOrEqual(1);
    expect(flows.slice(4)).toEqual(['0', '']);
    expect(gone.slice(0, 2)).toEqual(['down', '']);
    expect(gone[2]).toBe('never');
    expect(Number(gone[4])).toBeGreaterThanOrEqual(1);
    expect(gone[5]).toMatch(/^<code>ENOENT<\/code> .*gone.*ENOENT/);
  });

  it('renders to a screenshot of the size asked', () => {
    const png = join(dir, 'landing.png');
    chromium(join(dir, 'profile-shot'), [`--screenshot=${png}`, '--window-size=1100,500', `${exporter.base}/`]);
    const b = readFileSync(png);
    if (process.env.BME_KEEP_SCREENSHOT !== undefined) writeFileSync(process.env.BME_KEEP_SCREENSHOT, b);
    expect(b.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: width and height, big-endian, right after the chunk header.
    expect([b.readUInt32BE(16), b.readUInt32BE(20)]).toEqual([1100, 500]);
    expect(b.length).toBeGreaterThan(10_000);
  });
});
