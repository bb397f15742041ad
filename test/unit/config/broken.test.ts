import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { ConfigErrors } from '../../../src/yaml/errors.js';

// Each broken/NN-name.yaml has a sibling NN-name.expected: the exact lines the user is shown,
// `FILE:LINE:COLUMN: message`, with the file named by its base name.
const dir = join(dirname(fileURLToPath(import.meta.url)), 'broken');
const cases = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

function linesOf(file: string): string[] {
  try {
    parseConfig(readFileSync(join(dir, file), 'utf8'), file);
    return ['(parsed without problems)'];
  } catch (e) {
    if (!(e instanceof ConfigErrors)) return [`(threw ${String(e)})`];
    return e.message.split('\n');
  }
}

it('reports exactly the expected lines for every broken config', () => {
  expect(cases.length).toBeGreaterThanOrEqual(30);
  for (const f of cases) expect(existsSync(join(dir, f.replace(/\.yaml$/, '.expected'))), `${f} has no .expected`).toBe(true);
  const actual = Object.fromEntries(cases.map((f) => [f, linesOf(f)]));
  const expected = Object.fromEntries(cases.map((f) => [f, readFileSync(join(dir, f.replace(/\.yaml$/, '.expected')), 'utf8').trimEnd().split('\n')]));
  // One comparison of everything: the diff shows every case that drifted, not only the first.
  expect(actual).toEqual(expected);
});
