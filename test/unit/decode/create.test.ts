import { describe, expect, it } from 'vitest';
import { createDecoder, DECODER_NAMES, DecoderConfigError, defaultDecoderName, type DecoderSpec } from '../../../src/decode/index.js';
import { field } from './helpers.js';

/** The error createDecoder throws, checked to be a DecoderConfigError. */
function error(spec: DecoderSpec, type: string, env?: Parameters<typeof createDecoder>[2]): DecoderConfigError {
  try {
    createDecoder(spec, field(type), env);
  } catch (e) {
    expect(e).toBeInstanceOf(DecoderConfigError);
    return e as DecoderConfigError;
  }
  throw new Error(`createDecoder(${JSON.stringify(spec)}, ${type}) did not throw`);
}
const message = (spec: DecoderSpec, type: string, env?: Parameters<typeof createDecoder>[2]): string => error(spec, type, env).message;

describe('createDecoder', () => {
  it('knows every decoder name', () => {
    expect(DECODER_NAMES).toEqual(['uint', 'int', 'hex', 'string', 'inet_ip', 'ksym', 'kstack', 'syscall', 'errno', 'cgroup', 'ifname', 'majorminor', 'static_map', 'regexp', 'enum', 'dname', 'pci_vendor', 'pci_device', 'pci_class', 'pci_subclass']);
  });

  it('defaults by field type', () => {
    expect(defaultDecoderName(field('u32'))).toBe('uint');
    expect(defaultDecoderName(field('be64'))).toBe('uint');
    expect(defaultDecoderName(field('s16'))).toBe('int');
    expect(defaultDecoderName(field('char[16]'))).toBe('string');
    expect(defaultDecoderName(field('u8[6]'))).toBe('hex');
    expect(defaultDecoderName(field('u32', { enumNames: new Map([[0n, 'A']]) }))).toBe('enum');
    expect(defaultDecoderName(field('pad[4]'))).toBe('hex');
  });

  it('carries a stable code, the decoder and the field', () => {
    const e = error({ decoder: 'ksym' }, 'u32');
    expect(e.code).toBe('ERR_DECODER');
    expect(e.name).toBe('DecoderConfigError');
    expect(e.decoder).toBe('ksym');
    expect(e.field).toBe('f');
  });

  it('refuses unknown decoders and padding', () => {
    expect(message({ decoder: 'kaddr' }, 'u64')).toBe('unknown decoder "kaddr", expected one of uint, int, hex, string, inet_ip, ksym, kstack, syscall, errno, cgroup, ifname, majorminor, static_map, regexp, enum, dname, pci_vendor, pci_device, pci_class, pci_subclass');
    expect(message({ decoder: 'toString' }, 'u64')).toMatch(/^unknown decoder "toString"/);
    expect(message({}, 'pad[4]')).toBe('decoder hex needs a field that is not padding, got pad[4] (4 bytes)');
  });

  it('refuses decoders that do not fit the field, each with its message', () => {
    expect(message({ decoder: 'uint' }, 'char[16]')).toBe('decoder uint needs an integer field (u8..u64, s8..s64, be16..be64), got char[16] (16 bytes)');
    expect(message({ decoder: 'int' }, 'u8[8]')).toBe('decoder int needs an integer field (u8..u64, s8..s64, be16..be64), got u8[8] (8 bytes)');
    expect(message({ decoder: 'string' }, 'u32')).toBe('decoder string needs a char[N] or u8[N] field, got u32 (4 bytes)');
    expect(message({ decoder: 'inet_ip' }, 'u16')).toBe('decoder inet_ip needs a 4-byte integer, u8[4] or u8[16] field, got u16 (2 bytes)');
    expect(message({ decoder: 'inet_ip' }, 'u64')).toBe('decoder inet_ip needs a 4-byte integer, u8[4] or u8[16] field, got u64 (8 bytes)');
    expect(message({ decoder: 'inet_ip' }, 'char[4]')).toBe('decoder inet_ip needs a 4-byte integer, u8[4] or u8[16] field, got char[4] (4 bytes)');
    expect(message({ decoder: 'ksym' }, 'u32')).toBe('decoder ksym needs a 64-bit integer field (u64), got u32 (4 bytes)');
    expect(message({ decoder: 'cgroup' }, 'u8[8]')).toBe('decoder cgroup needs a 64-bit integer field (u64), or a u32, got u8[8] (8 bytes)');
    expect(message({ decoder: 'majorminor' }, 'u16')).toBe('decoder majorminor needs a 32- or 64-bit integer field (u32 or u64), got u16 (2 bytes)');
    expect(message({ decoder: 'syscall' }, 'char[4]')).toBe('decoder syscall needs an integer field (u8..u64, s8..s64, be16..be64), got char[4] (4 bytes)');
    expect(message({ decoder: 'errno' }, 'u8[4]')).toBe('decoder errno needs an integer field (u8..u64, s8..s64, be16..be64), got u8[4] (4 bytes)');
    expect(message({ decoder: 'ifname' }, 'char[16]')).toBe('decoder ifname needs an integer field (u8..u64, s8..s64, be16..be64), got char[16] (16 bytes)');
    expect(message({ decoder: 'enum' }, 'u32')).toBe('decoder enum needs an integer field with enum names from BTF, got u32 (4 bytes)');
    expect(message({ decoder: 'uint' }, 'u8[1]')).toBe('decoder uint needs an integer field (u8..u64, s8..s64, be16..be64), got u8[1] (1 byte)');
    expect(message({ decoder: 'kstack' }, 'u8[12]')).toBe('decoder kstack needs a u8[N] field with N a multiple of 8 (u64 frames, e.g. u8[160] for 20) or a u64, got u8[12] (12 bytes)');
    expect(message({ decoder: 'kstack' }, 'u32')).toBe('decoder kstack needs a u8[N] field with N a multiple of 8 (u64 frames, e.g. u8[160] for 20) or a u64, got u32 (4 bytes)');
    expect(message({ decoder: 'kstack' }, 'be64')).toBe('decoder kstack needs a u8[N] field with N a multiple of 8 (u64 frames, e.g. u8[160] for 20) or a u64, got be64 (8 bytes)');
    expect(message({ decoder: 'dname' }, 'u32')).toBe('decoder dname needs a char[N] or u8[N] field, got u32 (4 bytes)');
    expect(message({ decoder: 'pci_vendor' }, 'char[4]')).toBe('decoder pci_vendor needs an integer field (u8..u64, s8..s64, be16..be64), got char[4] (4 bytes)');
  });

  it('takes style: ebpf_exporter on the decoders whose values it changes, and no other style', () => {
    expect(message({ decoder: 'uint', style: 'ebpf_exporter' }, 'u32')).toBe('option style is for decoders inet_ip, ksym, kstack, syscall, errno, cgroup, ifname, majorminor, dname, pci_vendor, pci_device, pci_class, pci_subclass, not uint');
    expect(message({ decoder: 'errno', style: 'theirs' as 'ebpf_exporter' }, 'u32')).toBe('style "theirs" is not known, expected ebpf_exporter');
    expect(createDecoder({ decoder: 'errno', style: 'ebpf_exporter' }, field('u32')).name).toBe('errno');
  });

  it('refuses a pci decoder when pci.ids is missing, naming the files and the package', () => {
    expect(message({ decoder: 'pci_class' }, 'u16', { pciIds: ['/nonexistent/pci.ids', '/nonexistent/hwdata/pci.ids'] })).toBe(
      'decoder pci_class needs the PCI ID database /nonexistent/pci.ids or /nonexistent/hwdata/pci.ids, which is missing: install the package pci.ids (Debian, Ubuntu) or hwdata',
    );
  });

  it('accepts what fits', () => {
    for (const [decoder, type] of [['inet_ip', 'u32'], ['inet_ip', 'be32'], ['inet_ip', 'u8[4]'], ['inet_ip', 'u8[16]'], ['ksym', 'u64'], ['cgroup', 'u64'], ['majorminor', 'u32'], ['majorminor', 'u64'], ['hex', 'char[2]'], ['string', 'u8[4]'], ['kstack', 'u8[160]'], ['kstack', 'u64'], ['dname', 'char[32]'], ['dname', 'u8[32]'], ['pci_vendor', 'u32'], ['pci_subclass', 'u16']]) {
      expect(createDecoder({ decoder }, field(type)).name).toBe(decoder);
    }
  });

  it('refuses a syscall decoder for an arch without a table', () => {
    expect(message({ decoder: 'syscall' }, 'u32', { arch: 'ia32' })).toBe('decoder syscall has no table for arch ia32 (known: x64, arm64)');
  });

  it('checks static_map\'s map', () => {
    expect(message({ decoder: 'static_map' }, 'u32')).toBe('decoder static_map needs a map option (value: label value)');
    expect(message({ decoder: 'static_map', map: {} }, 'u32')).toBe('decoder static_map needs a non-empty map');
    expect(message({ decoder: 'static_map', map: { '01': 'x' } }, 'u32')).toBe('decoder static_map: map key "01" is not a decimal integer');
    expect(message({ decoder: 'static_map', map: { '0x1': 'x' } }, 'u32')).toBe('decoder static_map: map key "0x1" is not a decimal integer');
    const notString = JSON.parse('{"1": 2}') as Record<string, string>; // what a YAML `{1: 2}` gives
    expect(message({ decoder: 'static_map', map: notString }, 'u32')).toBe('decoder static_map: map value of key "1" is not a string');
  });

  it('checks regexp\'s pattern', () => {
    expect(message({ decoder: 'regexp' }, 'char[8]')).toBe('decoder regexp needs a pattern option');
    expect(message({ decoder: 'regexp', pattern: '(' }, 'char[8]')).toBe('decoder regexp: invalid pattern "(": Invalid regular expression: /(/u: Unterminated group');
  });

  it('refuses options given to a decoder that would ignore them', () => {
    expect(message({ decoder: 'uint', map: { '0': 'a' } }, 'u32')).toBe('option map is for decoder static_map, not uint');
    expect(message({ map: { '0': 'a' } }, 'u32')).toBe('option map is for decoder static_map, not uint');
    expect(message({ decoder: 'hex', allow_unknown: true }, 'u32')).toBe('option allow_unknown is for decoder static_map, not hex');
    expect(message({ decoder: 'string', pattern: 'x' }, 'char[4]')).toBe('option pattern is for decoder regexp, not string');
  });

  it('refuses a cache bound that is not a positive integer', () => {
    expect(message({}, 'u32', { cacheSize: 0 })).toBe('cacheSize must be a positive integer, got 0');
  });
});
