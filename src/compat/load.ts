/**
 * --config.dir and --config.names: ebpf_exporter's configs read from a folder, with each object's
 * maps and programs read from its ELF (nothing is loaded into the kernel here).
 */
import { BpfObject } from '../bpf/object.js';
import { ConfigError, ConfigErrors } from '../yaml/errors.js';
import { loadEbpfExporterConfigs, splitNames, type CompatResult } from './ebpf-exporter.js';

/** Where ebpf_exporter's configs are, as its flags say. */
export interface CompatRef {
  dir: string;
  /** --config.names as given: comma-separated. */
  names: string;
}

/** Read and translate the configs; ConfigErrors (one line each) when anything is wrong. */
export function loadCompat(ref: CompatRef): CompatResult {
  const names = splitNames(ref.names);
  if (typeof names === 'string') throw new ConfigErrors([new ConfigError({ file: ref.dir, line: 0, column: 0 }, '', names)]);
  return loadEbpfExporterConfigs(ref.dir, names, (path) => BpfObject.inspect(path));
}

/** How the configs are named in messages: `DIR (configs a, b)`. */
export function describeCompat(ref: CompatRef): string {
  return `${ref.dir} (ebpf_exporter configs ${ref.names.split(',').join(', ')})`;
}
