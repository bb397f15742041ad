/**
 * The library's folders stand on each other in one order, and no file imports from a folder above
 * its own: a snapshot travels up (bpf -> layout -> decode -> aggregate -> publish), never back down.
 * A folder not in LAYERS fails the test until it is given its place. Type-only imports count too: a
 * type from above is a dependency on that layer's design all the same. src/index.ts, the package's
 * entry point, stands above every layer (it only re-exports).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Bottom first. Folders on one line may not import from each other either. */
const LAYERS: readonly (readonly string[])[] = [
  ['.', 'util'], // src/log.ts and helpers with no project imports
  ['yaml'], // YAML with positions, shapes and their validator, positioned problems: every YAML file read
  ['bpf'], // the kernel: syscalls, maps, programs, BTF, the inventory of maps and programs
  ['layout'], // byte layouts of keys and values
  ['decode'], // label decoders
  ['metric'], // series types and exposition names, shared by config, aggregate and publish
  ['config'],
  ['aggregate'],
  ['publish'],
  ['collect'],
  ['compat', 'server'],
];

/** The package's entry point (package.json exports), which may re-export from any folder. */
const ENTRY = 'index.ts';

/** A relative specifier of `from '...'`, `import '...'` or `import('...')`. */
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm;

export function importsOf(source: string): string[] {
  return [...source.matchAll(SPECIFIER)].map((m) => m[1]);
}

/** Problems with `imports` (file -> its relative specifiers; paths relative to src/). */
export function layeringProblems(imports: ReadonlyMap<string, readonly string[]>): string[] {
  const rank = new Map<string, number>();
  LAYERS.forEach((folders, i) => folders.forEach((f) => rank.set(f, i)));
  const folderOf = (file: string): string => path.dirname(file).split(path.sep)[0];
  const problems: string[] = [];
  for (const [file, specs] of imports) {
    if (file === ENTRY) continue;
    const from = folderOf(file);
    const own = rank.get(from);
    if (own === undefined) {
      problems.push(`${file}: folder "${from}" has no place in LAYERS (test/unit/layering.test.ts)`);
      continue;
    }
    for (const spec of specs) {
      const target = path.normalize(path.join(path.dirname(file), spec));
      if (target.startsWith('..')) {
        problems.push(`${file}: imports ${spec}, outside src/`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      const theirs = rank.get(to);
      if (theirs === undefined) problems.push(`${file}: imports ${spec}, from folder "${to}" that has no place in LAYERS`);
      else if (theirs >= own) problems.push(`${file}: imports ${spec}, from ${to}/, which is ${theirs === own ? 'beside' : 'above'} ${from}/`);
    }
  }
  return problems;
}

/** Import cycles between files (each reported once, as the path around it). */
export function cycles(imports: ReadonlyMap<string, readonly string[]>): string[] {
  const edges = new Map<string, string[]>();
  for (const [file, specs] of imports) {
    edges.set(
      file,
      specs.map((s) => path.normalize(path.join(path.dirname(file), s)).replace(/\.js$/, '.ts')),
    );
  }
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === 'open') found.push([...stack.slice(stack.indexOf(g)), g].join(' -> '));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...edges.keys()].sort()) if (!state.has(f)) visit(f);
  return found;
}

function sourceImports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(path.relative(SRC, full), importsOf(readFileSync(full, 'utf8')));
  }
  return out;
}

describe('layering of src/', () => {
  it('no file imports from a folder above its own or beside it', () => {
    const imports = sourceImports();
    expect(imports.size).toBeGreaterThan(50);
    expect(layeringProblems(imports)).toEqual([]);
  });

  it('no import cycle between files', () => {
    expect(cycles(sourceImports())).toEqual([]);
  });

  it('reports an import from above, beside, outside src/ and from an unknown folder', () => {
    const problems = layeringProblems(
      new Map([
        ['config/rules.ts', ['../publish/prometheus-render.js', '../metric/names.js', './errors.js']],
        ['server/http.ts', ['../compat/load.js', '../../exporter/run.js']],
        ['newthing/x.ts', []],
        ['bpf/map.ts', ['../newthing/x.js', '../util/errno-names.js', '../log.js']],
        ['index.ts', ['./server/http.js', './bpf/map.js']],
      ]),
    );
    expect(problems).toEqual([
      'config/rules.ts: imports ../publish/prometheus-render.js, from publish/, which is above config/',
      'server/http.ts: imports ../compat/load.js, from compat/, which is beside server/',
      'server/http.ts: imports ../../exporter/run.js, outside src/',
      'newthing/x.ts: folder "newthing" has no place in LAYERS (test/unit/layering.test.ts)',
      'bpf/map.ts: imports ../newthing/x.js, from folder "newthing" that has no place in LAYERS',
    ]);
  });

  it('finds a cycle and the specifiers of every import form', () => {
    expect(cycles(new Map([['a/x.ts', ['./y.js']], ['a/y.ts', ['../b/z.js']], ['b/z.ts', ['../a/x.js']]]))).toEqual(['a/x.ts -> a/y.ts -> b/z.ts -> a/x.ts']);
    const src = "import { a } from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nimport './side.js';\nconst d = await import('../d.js');\nimport x from 'node:fs';\n";
    expect(importsOf(src)).toEqual(['./a.js', '../b.js', './c.js', './side.js', '../d.js']);
  });
});
