/**
 * What package.json promises an installer: every dependency with an install script is decided in
 * allowScripts (npm 11 warns about the rest, npm 12 will not run them), and nothing stale is listed.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const read = (f: string) => JSON.parse(readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8')) as Record<string, unknown>;

it('decides the install script of every dependency that has one, and only those', () => {
  const lock = read('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages)
    .filter(([p, v]) => p !== '' && v.hasInstallScript === true)
    .map(([p]) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length));
  const allow = read('package.json').allowScripts as Record<string, boolean>;
  expect(Object.keys(allow).sort()).toEqual([...new Set(withScripts)].sort());
  for (const v of Object.values(allow)) expect(typeof v).toBe('boolean');
});
