/** The one error type for a bad config: each problem is one line a person can act on. */
import { ExporterError } from '../util/errors.js';

export type ConfigPath = readonly (string | number)[];

/** `['maps', 0, 'metrics', 1, 'name']` -> `maps[0].metrics[1].name`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

/** Control characters a config quoted back (a key with a newline) would break the one line per problem. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * One problem in a config file. Its message is the whole line shown to the user:
 * `FILE:LINE:COLUMN: PATH: what is wrong, and what was expected`. Line and column are 1-based;
 * 0 means the problem is about the file as a whole (it cannot be read), and the message is then
 * `FILE: what is wrong`.
 */
export class ConfigError extends ExporterError {
  declare readonly code: 'ERR_CONFIG';
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The key path the problem is about, e.g. `maps[0].metrics[1].labels[0].decoder`; '' for the whole file. */
  readonly path: string;
  /** The problem without position and path. */
  readonly detail: string;

  constructor(at: { file: string; line: number; column: number }, path: string, detail: string) {
    const where = at.line > 0 ? `${at.file}:${at.line}:${at.column}` : at.file;
    super('ERR_CONFIG', oneLine(`${where}: ${path === '' ? '' : `${path}: `}${detail}`));
    this.file = at.file;
    this.line = at.line;
    this.column = at.column;
    this.path = path;
    this.detail = detail;
  }
}

/** Every problem found in a config, in file order; the message is one line per problem. */
export class ConfigErrors extends ExporterError {
  declare readonly code: 'ERR_CONFIG';
  readonly errors: readonly ConfigError[];

  constructor(errors: readonly ConfigError[]) {
    // A stable sort: problems at the same spot keep the order they were found in.
    const sorted = [...errors].sort((a, b) => a.line - b.line || a.column - b.column);
    super('ERR_CONFIG', sorted.map((e) => e.message).join('\n'));
    this.errors = sorted;
  }
}
