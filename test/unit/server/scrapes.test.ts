/**
 * The telemetry path and the cap on scrapes answered at once (--web.telemetry-path, --web.max-requests),
 * on a real server in this process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { ExpositionCache } from '../../../src/publish/prometheus.js';
import { createExporterServer, ScrapeGate, type ExporterServer, type ServerOptions } from '../../../src/server/http.js';
import { heldExposition as held } from './held-exposition.js';

const open: ExporterServer[] = [];
afterAll(() => {
  for (const s of open) s.close();
});

async function serve(opts: Partial<ServerOptions> & { exposition: ExpositionCache; maxRequests?: number }): Promise<string> {
  const { maxRequests, ...rest } = opts;
  const s = createExporterServer({ notReady: () => undefined, version: 'test', ...rest, ...(maxRequests === undefined ? {} : { scrapes: new ScrapeGate(maxRequests) }) });
  open.push(s);
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
};

describe('scrapes', () => {
  it('are served at --web.telemetry-path, which the landing page links to, and nowhere else', async () => {
    const h = held();
    h.release();
    const base = await serve({ exposition: h.exposition, telemetryPath: '/probe/bpf' });
    const r = await fetch(`${base}/probe/bpf`, { headers: { 'Accept-Encoding': 'identity' } });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('held_metric 1\n');
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect(await (await fetch(`${base}/`)).text()).toContain('<a href="probe/bpf">/probe/bpf</a>');
  });

  it('beyond --web.max-requests at once get 503 and Retry-After, probes still answer, and a freed slot serves again', async () => {
    const h = held();
    const base = await serve({ exposition: h.exposition, maxRequests: 2 });
    const first = [fetch(`${base}/metrics`), fetch(`${base}/metrics`)];
    await until(() => h.inside() === 2);
    const refused = await fetch(`${base}/metrics`, { headers: { 'Accept-Encoding': 'identity' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.text()).toBe('too many scrapes at once (--web.max-requests)\n');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    h.release();
    for (const r of await Promise.all(first)) expect(r.status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it('are not limited with --web.max-requests 0, and 40 at once by default', async () => {
    const h = held();
    const base = await serve({ exposition: h.exposition, maxRequests: 0 });
    const all = Array.from({ length: 45 }, () => fetch(`${base}/metrics`));
    await until(() => h.inside() === 45);
    h.release();
    for (const r of await Promise.all(all)) expect(r.status).toBe(200);

    const d = held();
    const dbase = await serve({ exposition: d.exposition });
    const forty = Array.from({ length: 40 }, () => fetch(`${dbase}/metrics`));
    await until(() => d.inside() === 40);
    expect((await fetch(`${dbase}/metrics`)).status).toBe(503);
    d.release();
    for (const r of await Promise.all(forty)) expect(r.status).toBe(200);
  });

  it('share one --web.max-requests between the servers of several listen addresses', async () => {
    const h = held();
    const gate = new ScrapeGate(2);
    const one = await serve({ exposition: h.exposition, scrapes: gate });
    const two = await serve({ exposition: h.exposition, scrapes: gate });
    const inFlight = [fetch(`${one}/metrics`), fetch(`${two}/metrics`)];
    await until(() => h.inside() === 2);
    expect((await fetch(`${one}/metrics`)).status).toBe(503);
    expect((await fetch(`${two}/metrics`)).status).toBe(503);
    h.release();
    for (const r of await Promise.all(inFlight)) expect(r.status).toBe(200);
  });
});
