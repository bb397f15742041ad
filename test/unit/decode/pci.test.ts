import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDecoder, type DecoderSpec } from '../../../src/decode/index.js';
import { parsePciIds, PCI_IDS_PATHS } from '../../../src/decode/pci.js';
import { field, host } from './helpers.js';

/** A host-order u32 at offset 0. */
const u32 = (v: number): Uint8Array => Uint8Array.from(host(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24));
const decode = (decoder: string, v: number, spec: DecoderSpec = {}): string | undefined => createDecoder({ decoder, ...spec }, field('u32')).decode(u32(v), 0);
const THEIRS: DecoderSpec = { style: 'ebpf_exporter' };

describe('pci decoders on the system\'s pci.ids', () => {
  it('finds the database (the pci.ids package, installed by scripts/setup.sh)', () => {
    expect(PCI_IDS_PATHS.some((p) => existsSync(p))).toBe(true);
  });

  it('pci_vendor: a vendor id to its name; unknown ids as theirs', () => {
    expect(decode('pci_vendor', 0x8086)).toBe('Intel Corporation');
    expect(decode('pci_vendor', 0x10de)).toBe('NVIDIA Corporation');
    expect(decode('pci_vendor', 0x15b3)).toBe('Mellanox Technologies');
    expect(decode('pci_vendor', 0xbeef)).toBe('unknown pci vendor: 0xbeef');
    expect(decode('pci_vendor', 0x8086, THEIRS)).toBe('Intel Corporation');
    expect(decode('pci_vendor', 0xbeef, THEIRS)).toBe('unknown pci vendor: 0xbeef');
  });

  it('pci_vendor below 0x1000: ours pads to the 4 digits of pci.ids, theirs writes the id as short as it is (and never finds it)', () => {
    expect(decode('pci_vendor', 0x0e11)).toBe('Compaq Computer Corporation');
    expect(decode('pci_vendor', 0x0e11, THEIRS)).toBe('unknown pci vendor: 0xe11');
  });

  it('pci_device: vendor << 16 | device to the device\'s name', () => {
    expect(decode('pci_device', 0x80861000)).toBe('82542 Gigabit Ethernet Controller (Fiber)');
    expect(decode('pci_device', 0x80861000, THEIRS)).toBe('82542 Gigabit Ethernet Controller (Fiber)');
    expect(decode('pci_device', 0xdeadbeef)).toBe('unknown pci device: 0xdeadbeef');
    expect(decode('pci_device', 0x0e11b011)).toBe('Netelligent 10/100 TX Embedded UTP');
    expect(decode('pci_device', 0x0e11b011, THEIRS)).toBe('unknown pci device: 0xe11b011');
  });

  it('pci_class: the class byte to its name', () => {
    expect(decode('pci_class', 1)).toBe('Mass storage controller');
    expect(decode('pci_class', 2, THEIRS)).toBe('Network controller');
    expect(decode('pci_class', 6)).toBe('Bridge');
    expect(decode('pci_class', 12)).toBe('Serial bus controller');
    expect(decode('pci_class', 253)).toBe('unknown pci class: 0xfd');
    expect(decode('pci_class', 256)).toBe('unknown pci class: 0x100');
  });

  it('pci_subclass: class << 8 | subclass to the subclass\'s name; unknown class or subclass as theirs', () => {
    expect(decode('pci_subclass', 0x0005)).toBe('Image coprocessor');
    expect(decode('pci_subclass', 0x0108)).toBe('Non-Volatile memory controller');
    expect(decode('pci_subclass', 0x0200, THEIRS)).toBe('Ethernet controller');
    expect(decode('pci_subclass', 0x0604)).toBe('PCI bridge');
    expect(decode('pci_subclass', 0xfd00)).toBe('unknown pci class: 0xfd');
    expect(decode('pci_subclass', 0x010b)).toBe('unknown pci subclass: 0x0b (class 0x01)');
    expect(decode('pci_subclass', 0x0003)).toBe('unknown pci subclass: 0x03 (class 0x00)');
  });

  it('reads u16 and u64 fields too', () => {
    expect(createDecoder({ decoder: 'pci_class' }, field('u16')).decode(Uint8Array.from(host(2, 0)), 0)).toBe('Network controller');
    expect(createDecoder({ decoder: 'pci_vendor' }, field('u64')).decode(Uint8Array.from(host(0x86, 0x80, 0, 0, 0, 0, 0, 0)), 0)).toBe('Intel Corporation');
  });
});

describe('parsePciIds', () => {
  it('reads vendors, devices, classes and subclasses, skipping comments, subsystems and programming interfaces', () => {
    const ids = parsePciIds(
      ['# comment', '', '1234  Vendor A', '\t0001  Device one', '\t\t1234 0001  A subsystem', '5678  Vendor B', '\t0001  Device B1', 'C 02  Network controller', '\t00  Ethernet controller', '\t\t00  A prog-if', '\t80  Network controller', ''].join('\n'),
    );
    expect([...ids.vendors]).toEqual([['1234', 'Vendor A'], ['5678', 'Vendor B']]);
    expect([...ids.devices]).toEqual([['12340001', 'Device one'], ['56780001', 'Device B1']]);
    expect(ids.classes.get('02')?.name).toBe('Network controller');
    expect([...ids.classes.get('02')!.subclasses]).toEqual([['00', 'Ethernet controller'], ['80', 'Network controller']]);
  });

  it('is read once, at the first decode, and shared by the decoders of one env', () => {
    const env = { pciIds: [...PCI_IDS_PATHS] };
    const a = createDecoder({ decoder: 'pci_vendor' }, field('u32'), env);
    const b = createDecoder({ decoder: 'pci_class' }, field('u32'), env);
    expect(a.decode(u32(0x8086), 0)).toBe('Intel Corporation');
    expect(b.decode(u32(2), 0)).toBe('Network controller');
  });
});
