import { parseConfig } from '../../../src/config/parse.js';
import { ConfigErrors } from '../../../src/yaml/errors.js';

/** The problems a config yields, as the lines a user sees (or [] when it parses). */
export function problems(text: string, file = 'config.yaml'): string[] {
  try {
    parseConfig(text, file);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    return e.errors.map((x) => x.message);
  }
}

/** A config of one job per source, written as flow mappings. */
export function jobs(...sources: string[]): string {
  return `maps:\n${sources.map((s, i) => `  - name: j${i}\n    source: ${s}\n    metrics: [ { name: m${i}_total, type: counter, help: M, value: v } ]\n`).join('')}`;
}
