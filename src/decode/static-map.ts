import { DecoderConfigError } from './errors.js';
import type { DecoderFactory } from './field.js';
import { plainForm } from './plain.js';

const DECIMAL = /^-?(0|[1-9]\d*)$/;

/**
 * static_map: the field's plain form (decimal for integers, see plain.ts) -> the label value
 * written in the config. Values not in the map print as `unknown:<n>`, or as `<n>` itself with
 * allow_unknown. Keys of an integer field must be canonical decimals: `01` or `0x1` would never
 * match, so they are refused instead of silently ignored.
 */
export const createStaticMapDecoder: DecoderFactory = (field, spec) => {
  function fail(message: string): never {
    throw new DecoderConfigError(`decoder static_map${message}`, 'static_map', field.name);
  }
  // The config arrives from YAML: check the shape the types promise.
  const map: unknown = spec.map;
  if (map === undefined || map === null || typeof map !== 'object' || Array.isArray(map)) fail(' needs a map option (value: label value)');
  const entries = Object.entries(map);
  if (entries.length === 0) fail(' needs a non-empty map');
  const table = new Map<string, string>();
  for (const [key, value] of entries) {
    if (field.type.kind === 'int' && !DECIMAL.test(key)) fail(`: map key "${key}" is not a decimal integer`);
    if (typeof value !== 'string') fail(`: map value of key "${key}" is not a string`);
    table.set(key, value);
  }
  const form = plainForm(field);
  const allowUnknown = spec.allow_unknown === true;
  return {
    name: 'static_map',
    decode(buf, offset) {
      const raw = form(buf, offset);
      return table.get(raw) ?? (allowUnknown ? raw : `unknown:${raw}`);
    },
  };
};
