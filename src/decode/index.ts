/**
 * Label decoders: the bytes of a key or value field -> a label value. Built once per label at
 * config time (validating the field against the decoder, with one-line DecoderConfigErrors), then
 * called only when the aggregator sees a new series. decode() never throws: any bytes give a string
 * (or undefined, for a regexp that drops the row).
 *
 * Caches, all bounded by env.cacheSize and shared by the decoders built from one env object:
 * - cgroup: an LRU of id -> path, filled by walks of the hierarchy (on a miss, at most once a second);
 * - majorminor: the last /proc/partitions read (replaced on a miss, at most once a second);
 * - ifname (default source): the last /sys/class/net scan (replaced on a miss, at most once a second);
 * - ksym and kstack share a sorted copy of kallsyms instead (the kernel's table, not a cache: not
 *   bounded by cacheSize), loaded at the first lookup and re-read on a miss at most once a minute;
 * - the pci decoders share one parsed pci.ids, found when the first is built and read at its first
 *   decode.
 */
import type { LayoutField } from '../layout/types.js';
import { createCgroupDecoder } from './cgroup.js';
import { decoderContext, type DecoderEnv } from './env.js';
import { createEnumDecoder } from './enum.js';
import { createErrnoDecoder } from './errno.js';
import { DecoderConfigError } from './errors.js';
import { needs, type DecoderFactory } from './field.js';
import { createHexDecoder } from './hex.js';
import { createIfnameDecoder } from './ifname.js';
import { createInetIpDecoder } from './inet-ip.js';
import { createIntDecoder, createUintDecoder } from './integer.js';
import { createDnameDecoder } from './dname.js';
import { createKsymDecoder } from './ksym.js';
import { createKstackDecoder } from './kstack.js';
import { createPciClassDecoder, createPciDeviceDecoder, createPciSubclassDecoder, createPciVendorDecoder } from './pci.js';
import { createMajorMinorDecoder } from './majorminor.js';
import { createRegexpDecoder } from './regexp.js';
import { createStaticMapDecoder } from './static-map.js';
import { createStringDecoder } from './string.js';
import { createSyscallDecoder } from './syscall.js';
import type { DecoderSpec, LabelDecoder } from './types.js';

export type { DecoderEnv } from './env.js';
export { DecoderConfigError } from './errors.js';
export type { DecoderSpec, LabelDecoder } from './types.js';

const FACTORIES: Readonly<Record<string, DecoderFactory>> = {
  uint: createUintDecoder,
  int: createIntDecoder,
  hex: createHexDecoder,
  string: createStringDecoder,
  inet_ip: createInetIpDecoder,
  ksym: createKsymDecoder,
  kstack: createKstackDecoder,
  syscall: createSyscallDecoder,
  errno: createErrnoDecoder,
  cgroup: createCgroupDecoder,
  ifname: createIfnameDecoder,
  majorminor: createMajorMinorDecoder,
  static_map: createStaticMapDecoder,
  regexp: createRegexpDecoder,
  enum: createEnumDecoder,
  dname: createDnameDecoder,
  pci_vendor: createPciVendorDecoder,
  pci_device: createPciDeviceDecoder,
  pci_class: createPciClassDecoder,
  pci_subclass: createPciSubclassDecoder,
};

/** Every decoder name a config may use. */
export const DECODER_NAMES: readonly string[] = Object.freeze(Object.keys(FACTORIES));

/** Options that belong to one decoder: given to another, they would be silently ignored. */
const OPTION_OWNERS: Readonly<Record<'map' | 'allow_unknown' | 'pattern' | 'patterns' | 'rewrite', string>> = {
  map: 'static_map',
  allow_unknown: 'static_map',
  pattern: 'regexp',
  patterns: 'regexp',
  rewrite: 'regexp',
};

/** The decoders that take `style: ebpf_exporter` (each says what it changes). */
export const STYLE_DECODERS: readonly string[] = Object.freeze([
  'inet_ip', 'ksym', 'kstack', 'syscall', 'errno', 'cgroup', 'ifname', 'majorminor', 'dname', 'pci_vendor', 'pci_device', 'pci_class', 'pci_subclass',
]);

/**
 * The decoder of a label that names none: enum fields (BTF gave enumerator names) -> enum,
 * integers -> uint (int when signed), char[N] -> string, u8[N] -> hex. Padding also answers hex,
 * though createDecoder refuses every decoder on padding.
 */
export function defaultDecoderName(field: LayoutField): string {
  const t = field.type;
  switch (t.kind) {
    case 'int':
      return field.enumNames !== undefined ? 'enum' : t.signed ? 'int' : 'uint';
    case 'char':
      return 'string';
    case 'bytes':
    case 'pad':
      return 'hex';
  }
}

/**
 * The decoder for a label reading `field`. Throws DecoderConfigError (one line) when the decoder is
 * unknown, does not fit the field's type or size, or lacks (or was given foreign) options.
 * Decoders built with the same `env` object share their system tables and caches.
 */
export function createDecoder(spec: DecoderSpec, field: LayoutField, env?: DecoderEnv): LabelDecoder {
  const name = spec.decoder ?? defaultDecoderName(field);
  if (!Object.hasOwn(FACTORIES, name)) {
    throw new DecoderConfigError(`unknown decoder "${name}", expected one of ${DECODER_NAMES.join(', ')}`, name, field.name);
  }
  for (const [option, owner] of Object.entries(OPTION_OWNERS)) {
    if (spec[option as keyof typeof OPTION_OWNERS] !== undefined && owner !== name) {
      throw new DecoderConfigError(`option ${option} is for decoder ${owner}, not ${name}`, name, field.name);
    }
  }
  if (spec.style !== undefined) {
    if (spec.style !== 'ebpf_exporter') throw new DecoderConfigError(`style "${String(spec.style)}" is not known, expected ebpf_exporter`, name, field.name);
    if (!STYLE_DECODERS.includes(name)) throw new DecoderConfigError(`option style is for decoders ${STYLE_DECODERS.join(', ')}, not ${name}`, name, field.name);
  }
  if (field.type.kind === 'pad') needs(name, field, 'a field that is not padding');
  return FACTORIES[name](field, spec, decoderContext(env));
}
