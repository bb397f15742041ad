import { existsSync, readFileSync } from 'node:fs';
import type { DecoderContext } from './types.js';
import { DecoderConfigError } from './errors.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader } from './int.js';

/** Where the PCI ID database is looked for, in order (Debian's package pci.ids; hwdata elsewhere). */
export const PCI_IDS_PATHS: readonly string[] = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'];

/** The names of pci.ids: vendors by 4-digit id, devices by vendor + device id, classes and their subclasses by 2-digit id. */
export interface PciIds {
  vendors: Map<string, string>;
  devices: Map<string, string>;
  classes: Map<string, { name: string; subclasses: Map<string, string> }>;
}

/**
 * Parse pci.ids: `vvvv  vendor`, `\tdddd  device` (keyed vendor + device), `C cc  class`,
 * `\tss  subclass`; subsystem and programming-interface lines (two tabs), comments and blank lines
 * are skipped. Ids are lowercase hex in the file and kept as written.
 */
export function parsePciIds(text: string): PciIds {
  const ids: PciIds = { vendors: new Map(), devices: new Map(), classes: new Map() };
  let vendor: string | undefined;
  let subclasses: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('\t\t')) continue;
    if (line.startsWith('C ')) {
      subclasses = new Map();
      vendor = undefined;
      ids.classes.set(line.slice(2, 4), { name: line.slice(6), subclasses });
    } else if (!line.startsWith('\t')) {
      vendor = line.slice(0, 4);
      subclasses = undefined;
      ids.vendors.set(vendor, line.slice(6));
    } else if (subclasses !== undefined) {
      subclasses.set(line.slice(1, 3), line.slice(5));
    } else if (vendor !== undefined) {
      ids.devices.set(vendor + line.slice(1, 5), line.slice(7));
    }
  }
  return ids;
}

/** The context's pci.ids: its path is found when a pci decoder is built, the file parsed at its first use. */
class PciDatabase {
  #ids: PciIds | undefined;
  constructor(readonly path: string) {}
  get ids(): PciIds {
    if (this.#ids === undefined) {
      let text: string;
      try {
        text = readFileSync(this.path, 'utf8');
      } catch {
        text = ''; // removed since the start: every id is unknown
      }
      this.#ids = parsePciIds(text);
    }
    return this.#ids;
  }
}

const databases = new WeakMap<DecoderContext, PciDatabase>();

function pciDatabase(decoder: string, field: string, ctx: DecoderContext): PciDatabase {
  let db = databases.get(ctx);
  if (db === undefined) {
    const path = ctx.pciIds.find((p) => existsSync(p));
    if (path === undefined) {
      throw new DecoderConfigError(`decoder ${decoder} needs the PCI ID database ${ctx.pciIds.join(' or ')}, which is missing: install the package pci.ids (Debian, Ubuntu) or hwdata`, decoder, field);
    }
    db = new PciDatabase(path);
    databases.set(ctx, db);
  }
  return db;
}

type Lookup = (id: bigint, ids: PciIds) => string;

const hex = (v: bigint, digits: number): string => v.toString(16).padStart(digits, '0');

/**
 * A pci_* decoder: the field's unsigned value -> a name from pci.ids. `digits(theirs)` is how many
 * hex digits the id is written with: ebpf_exporter writes vendor and device ids with at least 2
 * (so a vendor below 0x1000 is never found there); ours with the 4 and 8 pci.ids has.
 */
function pciDecoder(name: string, lookup: (theirs: boolean) => Lookup): DecoderFactory {
  return (field, spec, ctx) => {
    const read = intReader(requireInt(name, field), false);
    const db = pciDatabase(name, field.name, ctx);
    const find = lookup(spec.style === 'ebpf_exporter');
    return {
      name,
      decode(buf, offset) {
        const v = read(buf, offset);
        return find(typeof v === 'bigint' ? v : BigInt(v), db.ids);
      },
    };
  };
}

/** pci_vendor: a vendor id (0x8086) -> `Intel Corporation`; else `unknown pci vendor: 0x<id>`. */
export const createPciVendorDecoder = pciDecoder('pci_vendor', (theirs) => (id, ids) => {
  const key = hex(id, theirs ? 2 : 4);
  return ids.vendors.get(key) ?? `unknown pci vendor: 0x${key}`;
});

/** pci_device: vendor id << 16 | device id (0x80861000) -> the device's name; else `unknown pci device: 0x<id>`. */
export const createPciDeviceDecoder = pciDecoder('pci_device', (theirs) => (id, ids) => {
  const key = hex(id, theirs ? 4 : 8);
  return ids.devices.get(key) ?? `unknown pci device: 0x${key}`;
});

/** pci_class: a class id (2) -> `Network controller`; else `unknown pci class: 0x<id>`. */
export const createPciClassDecoder = pciDecoder('pci_class', () => (id, ids) => {
  const key = hex(id, 2);
  return ids.classes.get(key)?.name ?? `unknown pci class: 0x${key}`;
});

/**
 * pci_subclass: class << 8 | subclass (0x0200) -> `Ethernet controller`; an unknown class gives
 * `unknown pci class: 0x<cc>`, an unknown subclass of a known one `unknown pci subclass: 0x<ss> (class 0x<cc>)`.
 */
export const createPciSubclassDecoder = pciDecoder('pci_subclass', () => (id, ids) => {
  const cls = hex(id >> 8n, 2);
  const sub = hex(id & 0xffn, 2);
  const c = ids.classes.get(cls);
  if (c === undefined) return `unknown pci class: 0x${cls}`;
  return c.subclasses.get(sub) ?? `unknown pci subclass: 0x${sub} (class 0x${cls})`;
});
