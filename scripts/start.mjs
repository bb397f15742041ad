#!/usr/bin/env node
// npm start: the exporter on a useful config with nothing written by the user. It builds the bundled
// examples when clang and bpftool are there, and then runs config/examples/all.yaml (the examples
// and the inventory of every map on the host); otherwise config/default.yaml (the inventory alone).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const all = `${root}config/examples/all.yaml`;
const build = spawnSync(process.execPath, [`${root}scripts/build-bpf.mjs`], { stdio: ['ignore', 'ignore', 'pipe'] });
// The objects all.yaml names must all be there: a missing one would only report up 0 every cycle.
const objects = [...readFileSync(all, 'utf8').matchAll(/object:\s*([^\s,}]+)/g)].map((m) => `${root}config/examples/${m[1]}`);
const examples = build.status === 0 && objects.every((o) => existsSync(o));
if (!examples) {
  const why = build.status === 0 ? 'an example object is missing' : build.stderr.toString().trim().split('\n').pop();
  console.error(`bpf-map-exporter: examples not built (${why}); running the inventory only (config/default.yaml)`);
}
const config = examples ? all : `${root}config/default.yaml`;
// The memory flags of the image and the systemd unit (docs/deployment.md, "Memory").
const r = spawnSync(process.execPath, ['--max-semi-space-size=4', `${root}dist/exporter/main.js`, 'run', '--config', config, ...process.argv.slice(2)], { stdio: 'inherit', env: { MALLOC_ARENA_MAX: '2', ...process.env } });
process.exit(r.status ?? 1);
