/**
 * YAML text -> a document with positions, or ConfigErrors with one positioned line: what every YAML
 * file the exporter reads goes through first (its config, the web config, ebpf_exporter's configs).
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, ConfigErrors } from './errors.js';

/**
 * The YAML document of a config file (ours or a web config) with its line counter, or ConfigErrors
 * with a positioned line per YAML problem. After a YAML error the tree is the parser's guess at
 * what was meant; checking it would report problems that are not in the file, so YAML errors are
 * reported alone.
 */
export function parseYaml(text: string, file: string): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  // The first problem only: the parser's later ones follow from it (one bare `u8[4]` inside `{ }` gave
  // 65 lines), and whatever else is wrong shows once it is mended.
  const first = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0])[0];
  if (first !== undefined) {
    const { line, col } = lines.linePos(first.pos[0]);
    const hint = yamlHint(text, first.pos[0]);
    throw new ConfigErrors([new ConfigError({ file, line, column: col }, '', `invalid YAML: ${first.message.split('\n')[0]}${hint === undefined ? '' : ` (${hint})`}`)]);
  }
  return { doc, lines };
}

/**
 * What was probably meant by the YAML mistake at `offset`, when it is a common one: a field type
 * such as u8[4] written bare inside `{ }` or `[ ]`, where brackets end the value.
 */
function yamlHint(text: string, offset: number): string | undefined {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  const line = text.slice(start, end < 0 ? undefined : end);
  for (const m of line.matchAll(/(?<!["'\w])[A-Za-z_]\w*\[[^\]\s,{}"']*\]/g)) {
    const at = start + m.index;
    if (offset >= at && offset <= at + m[0].length) return `inside { } or [ ], a value with brackets must be quoted: "${m[0]}"`;
  }
  return undefined;
}

/** The text of a config file (ours or a web config), or ConfigErrors with one line saying why not. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ConfigErrors([new ConfigError({ file: path, line: 0, column: 0 }, '', `cannot read: ${code}`)]);
  }
}
