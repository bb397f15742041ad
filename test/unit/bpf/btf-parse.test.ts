import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Btf, BtfError, type BtfType } from '../../../src/bpf/btf-parse.js';
import { flattenFields, type BtfField } from '../../../src/layout/btf-fields.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(here, '../../fixtures/btf/types.bpf.c');
const REQUIRE_BPF = process.env.REQUIRE_BPF === '1';

// ---------------------------------------------------------------------------
// Toolchain discovery. bpftool lives in /usr/sbin on Debian, which is not on
// every user's PATH, hence the extra directories.
// ---------------------------------------------------------------------------

function findTool(names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === '') continue;
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here; keep looking
      }
    }
  }
  return undefined;
}

const clang = findTool(['clang', 'clang-18', 'clang-17', 'clang-16', 'clang-15', 'clang-14']);
const objcopy = findTool(['llvm-objcopy', 'llvm-objcopy-18', 'llvm-objcopy-17', 'llvm-objcopy-16', 'llvm-objcopy-15', 'llvm-objcopy-14']);
const bpftool = findTool(['bpftool']);

const missingCompile = [clang ? '' : 'clang', objcopy ? '' : 'llvm-objcopy'].filter((s) => s !== '');
const compileAvailable = missingCompile.length === 0;
if (!compileAvailable && !REQUIRE_BPF) {
  console.warn(`btf-parse: skipping tests on compiled BPF objects: ${missingCompile.join(', ')} not found (set REQUIRE_BPF=1 to make this a failure)`);
}
if (!bpftool && !REQUIRE_BPF) {
  console.warn('btf-parse: skipping the bpftool cross-check: bpftool not found (set REQUIRE_BPF=1 to make this a failure)');
}
const itCompiled = compileAvailable || REQUIRE_BPF ? it : it.skip;
const itBpftool = (compileAvailable && bpftool) || REQUIRE_BPF ? it : it.skip;

interface Compiled {
  dir: string;
  object: string;
  raw: Uint8Array;
  btf: Btf;
  clangMajor: number;
}

let compiledCache: Compiled | undefined;
let tmp: string | undefined;

/** Built lazily so nothing runs when every test using it is skipped. */
function compiled(): Compiled {
  if (compiledCache) return compiledCache;
  if (!clang || !objcopy) throw new Error(`REQUIRE_BPF=1 but ${missingCompile.join(', ')} not found`);
  tmp = mkdtempSync(join(tmpdir(), 'btf-parse-'));
  const object = join(tmp, 'types.bpf.o');
  const btfPath = join(tmp, 'types.btf');
  // <linux/types.h> includes <asm/types.h>, which Debian keeps under the
  // multiarch directory; `-target bpf` does not search it by itself.
  const multiarch = execFileSync(clang, ['-print-multiarch'], { encoding: 'utf8' }).trim();
  const archInclude = multiarch !== '' && existsSync(join('/usr/include', multiarch)) ? ['-I', join('/usr/include', multiarch)] : [];
  execFileSync(clang, ['-g', '-O2', '-target', 'bpf', ...archInclude, '-c', FIXTURE, '-o', object], { stdio: ['ignore', 'pipe', 'pipe'] });
  execFileSync(objcopy, ['--dump-section', `.BTF=${btfPath}`, object]);
  const version = execFileSync(clang, ['--version'], { encoding: 'utf8' });
  const clangMajor = Number(/version (\d+)\./.exec(version)?.[1] ?? '0');
  const raw = new Uint8Array(readFileSync(btfPath));
  compiledCache = { dir: tmp, object, raw, btf: Btf.parse(raw), clangMajor };
  return compiledCache;
}

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function typeByName(btf: Btf, name: string, kind: string): BtfType {
  const id = btf.findByName(name, kind);
  expect(id, `${kind} ${name}`).toBeDefined();
  return btf.describe(id as number);
}

function asStruct(t: BtfType): Extract<BtfType, { kind: 'struct' | 'union' }> {
  if (t.kind !== 'struct' && t.kind !== 'union') throw new Error(`expected struct/union, got ${t.kind}`);
  return t;
}

function asEnum(t: BtfType): Extract<BtfType, { kind: 'enum' }> {
  if (t.kind !== 'enum') throw new Error(`expected enum, got ${t.kind}`);
  return t;
}

function asArray(t: BtfType): Extract<BtfType, { kind: 'array' }> {
  if (t.kind !== 'array') throw new Error(`expected array, got ${t.kind}`);
  return t;
}

/** [path, offset, size, bitSize] for compact comparisons. */
function layout(fields: BtfField[]): [string, number, number, number][] {
  return fields.map((f) => [f.path, f.offset, f.size, f.bitSize]);
}

// ---------------------------------------------------------------------------
// Compiled fixture
// ---------------------------------------------------------------------------

describe('Btf on clang output (test/fixtures/btf/types.bpf.c)', () => {
  itCompiled('parses the .BTF section and its type section completely', () => {
    const { btf } = compiled();
    expect(btf.typeCount).toBeGreaterThan(80);
    // The last records are DATASECs: reaching them by name proves every
    // earlier record (including FUNC, FUNC_PROTO, VAR, DECL_TAG, TYPE_TAG)
    // was skipped with the right length.
    expect(btf.findByName('.maps', 'datasec')).toBeDefined();
    expect(btf.findByName('license', 'datasec')).toBe(btf.typeCount);
    expect(btf.kindOf(btf.findByName('count_packets', 'func') as number)).toBe('func');
    expect(btf.kindOf(btf.findByName('pick', 'func') as number)).toBe('func');
    expect(btf.findByName('param', 'decl_tag')).toBeDefined();
    expect(btf.findByName('user', 'type_tag')).toBeDefined();
    expect(btf.findByName('flows', 'var')).toBeDefined();
  });

  itCompiled('struct key: scalar, char array and byte array', () => {
    const key = asStruct(typeByName(compiled().btf, 'key', 'struct'));
    expect(key.size).toBe(24);
    expect(key.members.map((m) => [m.name, m.offset, m.bitOffset, m.bitSize])).toEqual([
      ['pid', 0, 0, 0],
      ['comm', 4, 32, 0],
      ['pad', 20, 160, 0],
    ]);
    expect(key.members[0].type).toEqual({ kind: 'int', name: '__u32', size: 4, signed: false, bits: 32, char: false, bool: false });
    const comm = asArray(key.members[1].type);
    expect(comm.length).toBe(16);
    expect(comm.size).toBe(16);
    // clang encodes plain `char` as SIGNED (never BTF_INT_CHAR); `char` is
    // derived from the name.
    expect(comm.element).toMatchObject({ kind: 'int', name: 'char', size: 1, char: true, signed: true });
    const pad = asArray(key.members[2].type);
    expect(pad.length).toBe(4);
    expect(pad.element).toMatchObject({ kind: 'int', name: '__u8', size: 1, signed: false, char: false });
    expect(layout(flattenFields(key, 'key'))).toEqual([
      ['key.pid', 0, 4, 0],
      ['key.comm', 4, 16, 0],
      ['key.pad', 20, 4, 0],
    ]);
  });

  itCompiled('struct val: __u64 and __s64 fields', () => {
    const val = asStruct(typeByName(compiled().btf, 'val', 'struct'));
    expect(val.size).toBe(32);
    expect(val.members.map((m) => [m.name, m.offset, m.type.name, m.type.size])).toEqual([
      ['bytes', 0, '__u64', 8],
      ['packets', 8, '__u64', 8],
      ['delta', 16, '__s64', 8],
      ['last_seen_ns', 24, '__u64', 8],
    ]);
    expect(val.members[0].type).toMatchObject({ kind: 'int', signed: false, bits: 64 });
    expect(val.members[2].type).toMatchObject({ kind: 'int', signed: true, bits: 64 });
  });

  itCompiled('typedef naming: ints take the outermost typedef name, named structs keep theirs', () => {
    const { btf } = compiled();
    expect(btf.describe(btf.findByName('__u32', 'typedef') as number)).toMatchObject({ kind: 'int', name: '__u32', size: 4 });
    expect(btf.describe(btf.findByName('counter_t', 'typedef') as number)).toMatchObject({ kind: 'int', name: 'counter_t', size: 8, signed: false });
    expect(btf.describe(btf.findByName('val_t', 'typedef') as number)).toMatchObject({ kind: 'struct', name: 'val', size: 32 });
    expect(btf.describe(btf.findByName('unsigned int', 'int') as number)).toMatchObject({ kind: 'int', name: 'unsigned int' });
    expect(btf.nameOf(btf.findByName('counter_t', 'typedef') as number)).toBe('counter_t');
    expect(btf.describe(0)).toEqual({ kind: 'void', name: 'void', size: 0 });
    expect(btf.nameOf(0)).toBe('void');
  });

  itCompiled('struct outer: nested structs, a union member and a typedef member', () => {
    const outer = asStruct(typeByName(compiled().btf, 'outer', 'struct'));
    expect(outer.size).toBe(40);
    expect(outer.members.map((m) => [m.name, m.offset, m.type.kind, m.type.name])).toEqual([
      ['src', 0, 'struct', 'inner'],
      ['dst', 4, 'struct', 'inner'],
      ['ifindex', 8, 'int', '__u32'],
      ['addr', 12, 'union', 'addr'],
      ['total', 32, 'int', 'counter_t'],
    ]);
    expect(layout(flattenFields(outer))).toEqual([
      ['src.port', 0, 2, 0],
      ['src.proto', 2, 1, 0],
      ['src.flags', 3, 1, 0],
      ['dst.port', 4, 2, 0],
      ['dst.proto', 6, 1, 0],
      ['dst.flags', 7, 1, 0],
      ['ifindex', 8, 4, 0],
      ['addr.v4', 12, 4, 0],
      ['addr.v6', 12, 16, 0],
      ['addr.w', 12, 16, 0],
      ['total', 32, 8, 0],
    ]);
  });

  itCompiled('union addr: all members at offset 0', () => {
    const addr = asStruct(typeByName(compiled().btf, 'addr', 'union'));
    expect(addr.kind).toBe('union');
    expect(addr.size).toBe(16);
    expect(addr.members.map((m) => [m.name, m.offset, m.type.size])).toEqual([
      ['v4', 0, 4],
      ['v6', 0, 16],
      ['w', 0, 16],
    ]);
    expect(asArray(addr.members[2].type)).toMatchObject({ length: 8, element: { name: '__u16', size: 2 } });
  });

  itCompiled('struct hist: an array of structs expands per element', () => {
    const hist = asStruct(typeByName(compiled().btf, 'hist', 'struct'));
    expect(hist.size).toBe(56);
    const buckets = asArray(hist.members[1].type);
    expect(buckets).toMatchObject({ length: 3, size: 48, element: { kind: 'struct', name: 'bucket', size: 16 } });
    expect(hist.members[1].offset).toBe(8);
    expect(layout(flattenFields(hist, 'v'))).toEqual([
      ['v.count', 0, 4, 0],
      ['v.buckets[0].lo', 8, 8, 0],
      ['v.buckets[0].hi', 16, 4, 0],
      ['v.buckets[1].lo', 24, 8, 0],
      ['v.buckets[1].hi', 32, 4, 0],
      ['v.buckets[2].lo', 40, 8, 0],
      ['v.buckets[2].hi', 48, 4, 0],
    ]);
  });

  itCompiled('enums: names, values and signedness as this clang encodes them', () => {
    const { btf, clangMajor } = compiled();
    const state = asEnum(typeByName(btf, 'state', 'enum'));
    const big = asEnum(typeByName(btf, 'big', 'enum'));
    expect(state.size).toBe(4);
    expect(big.size).toBe(8);
    expect(state.values.map((v) => v.name)).toEqual(['ST_ERR', 'ST_IDLE', 'ST_RUN', 'ST_DONE']);
    expect(big.values.map((v) => v.name)).toEqual(['BIG_A', 'BIG_B', 'BIG_MAX']);
    if (clangMajor >= 15) {
      // LLVM 15 added ENUM64 and the signed-enum kind_flag.
      expect(btf.kindOf(btf.findByName('big', 'enum') as number)).toBe('enum64');
      expect(state.signed).toBe(true);
      expect(state.values.map((v) => v.value)).toEqual([-1n, 0n, 1n, 5n]);
      expect(big.signed).toBe(false);
      expect(big.values.map((v) => v.value)).toEqual([1n, 0x100000000n, 0xffffffffffffffffn]);
    } else {
      // Older clang has neither: every enum is an unsigned 32-bit ENUM, so
      // -1 reads as 0xffffffff and 64-bit values are truncated.
      expect(btf.kindOf(btf.findByName('big', 'enum') as number)).toBe('enum');
      expect(state.signed).toBe(false);
      expect(state.values.map((v) => v.value)).toEqual([0xffffffffn, 0n, 1n, 5n]);
      expect(big.signed).toBe(false);
      expect(big.values.map((v) => v.value)).toEqual([1n, 0n, 0xffffffffn]);
    }
  });

  itCompiled('struct bits: kind_flag bitfield members', () => {
    const bits = asStruct(typeByName(compiled().btf, 'bits', 'struct'));
    expect(bits.size).toBe(12);
    expect(bits.members.map((m) => [m.name, m.offset, m.bitOffset, m.bitSize, m.type.name])).toEqual([
      ['a', 0, 0, 3, '__u32'],
      ['b', 0, 3, 5, '__u32'],
      ['c', 1, 8, 1, '__u32'],
      ['d', 1, 9, 4, 'int'],
      ['e', 2, 16, 0, '__u8'],
      ['f', 4, 32, 12, '__u16'],
      ['st', 8, 64, 0, 'state'],
    ]);
    expect(bits.members[3].type).toMatchObject({ kind: 'int', signed: true });
    const fields = flattenFields(bits);
    expect(fields.map((f) => [f.path, f.offset, f.size, f.bitOffset, f.bitSize])).toEqual([
      ['a', 0, 1, 0, 3],
      ['b', 0, 1, 3, 5],
      ['c', 1, 1, 8, 1],
      ['d', 1, 1, 9, 4],
      ['e', 2, 1, 16, 0],
      ['f', 4, 2, 32, 12],
      ['st', 8, 4, 64, 0],
    ]);
  });

  itCompiled('struct misc: floats, bool, pointers, qualifiers, type tags, anonymous members', () => {
    const misc = asStruct(typeByName(compiled().btf, 'misc', 'struct'));
    expect(misc.size).toBe(96);
    const byName = new Map(misc.members.map((m) => [m.name, m]));
    expect(byName.get('ratio')?.type).toEqual({ kind: 'float', name: 'double', size: 8 });
    expect(byName.get('f')?.type).toEqual({ kind: 'float', name: 'float', size: 4 });
    expect(byName.get('ok')?.type).toMatchObject({ kind: 'int', name: '_Bool', bool: true, size: 1 });
    expect(byName.get('sc')?.type).toMatchObject({ kind: 'int', name: 'signed char', signed: true, char: false });
    expect(byName.get('uc')?.type).toMatchObject({ kind: 'int', name: 'unsigned char', signed: false, char: false });
    expect(byName.get('ptr')?.type).toEqual({ kind: 'pointer', name: '', size: 8 });
    expect(byName.get('uptr')?.type).toEqual({ kind: 'pointer', name: '', size: 8 });
    // const volatile __u32 resolves through CONST and VOLATILE to the typedef.
    expect(byName.get('cv')?.type).toMatchObject({ kind: 'int', name: '__u32', size: 4 });
    expect(asArray(byName.get('counters')?.type as BtfType)).toMatchObject({ length: 2, size: 16, element: { name: 'counter_t' } });
    expect(byName.get('')?.type).toMatchObject({ kind: 'union', name: '', size: 4 });

    expect(layout(flattenFields(misc))).toEqual([
      ['st', 0, 4, 0],
      ['b', 8, 8, 0],
      ['ratio', 16, 8, 0],
      ['f', 24, 4, 0],
      ['ok', 28, 1, 0],
      ['sc', 29, 1, 0],
      ['uc', 30, 1, 0],
      ['ptr', 32, 8, 0],
      ['cv', 40, 4, 0],
      ['uptr', 48, 8, 0],
      ['bits.a', 56, 1, 3],
      ['bits.b', 56, 1, 5],
      ['bits.c', 57, 1, 1],
      ['bits.d', 57, 1, 4],
      ['bits.e', 58, 1, 0],
      ['bits.f', 60, 2, 12],
      ['bits.st', 64, 4, 0],
      ['counters', 72, 16, 0],
      ['raw', 88, 4, 0],
      ['lo16', 88, 2, 0],
      ['hi16', 90, 2, 0],
    ]);
  });

  itCompiled('non-data kinds are refused by describe()', () => {
    const { btf } = compiled();
    for (const [name, kind] of [['count_packets', 'func'], ['flows', 'var'], ['.maps', 'datasec'], ['tagged', 'decl_tag']] as const) {
      const id = btf.findByName(name, kind) as number;
      expect(() => btf.describe(id)).toThrow(BtfError);
      expect(() => btf.describe(id)).toThrow('not a data type');
    }
  });

  itCompiled('accepts a Uint8Array view at a non-zero byteOffset and copies its input', () => {
    const { raw } = compiled();
    const backing = new Uint8Array(raw.byteLength + 3);
    backing.set(raw, 3);
    const view = backing.subarray(3);
    const btf = Btf.parse(view);
    view.fill(0xff);
    expect(asStruct(typeByName(btf, 'key', 'struct')).size).toBe(24);
  });
});

// ---------------------------------------------------------------------------
// Cross-check with bpftool
// ---------------------------------------------------------------------------

interface DumpRecord {
  id: number;
  kind: string;
  name: string;
  attrs: Map<string, string>;
  members: { name: string; attrs: Map<string, string> }[];
}

function parseAttrs(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const m of text.matchAll(/([a-z_]+)=([^\s,]+)/g)) attrs.set(m[1], m[2]);
  return attrs;
}

/** Reads `bpftool btf dump ... format raw`: "[id] KIND 'name' k=v ..." plus tab-indented member lines. */
function parseBpftoolRaw(text: string): DumpRecord[] {
  const out: DumpRecord[] = [];
  for (const line of text.split('\n')) {
    const head = /^\[(\d+)\] ([A-Z0-9_]+) '([^']*)'(.*)$/.exec(line);
    if (head) {
      out.push({ id: Number(head[1]), kind: head[2], name: head[3] === '(anon)' ? '' : head[3], attrs: parseAttrs(head[4]), members: [] });
      continue;
    }
    const member = /^\t(?:'([^']*)')?(.*)$/.exec(line);
    if (member && out.length > 0) {
      const name = member[1] === undefined || member[1] === '(anon)' ? '' : member[1];
      out[out.length - 1].members.push({ name, attrs: parseAttrs(member[2]) });
    }
  }
  return out;
}

function attr(r: { attrs: Map<string, string> }, key: string): string {
  const v = r.attrs.get(key);
  if (v === undefined) throw new Error(`bpftool output lacks ${key}`);
  return v;
}

describe('Btf agrees with bpftool btf dump format raw', () => {
  itBpftool('same ids, kinds, names, sizes, member offsets, bitfields, array lengths and enum values', () => {
    if (!bpftool) throw new Error('REQUIRE_BPF=1 but bpftool not found');
    const { btf, object } = compiled();
    const dump = parseBpftoolRaw(execFileSync(bpftool, ['btf', 'dump', 'file', object, 'format', 'raw'], { encoding: 'utf8' }));
    expect(dump.length).toBe(btf.typeCount);
    let structs = 0;
    for (const r of dump) {
      expect(btf.kindOf(r.id).toUpperCase(), `kind of [${r.id}]`).toBe(r.kind);
      expect(btf.nameOf(r.id), `name of [${r.id}]`).toBe(r.name);
      if (r.kind === 'STRUCT' || r.kind === 'UNION') {
        structs++;
        const t = asStruct(btf.describe(r.id));
        expect(t.size, `size of [${r.id}] ${r.name}`).toBe(Number(attr(r, 'size')));
        expect(t.members.map((m) => [m.name, m.bitOffset, m.bitSize]), `members of [${r.id}] ${r.name}`).toEqual(
          r.members.map((m) => [m.name, Number(attr(m, 'bits_offset')), Number(m.attrs.get('bitfield_size') ?? '0')]),
        );
      } else if (r.kind === 'INT') {
        const t = btf.describe(r.id);
        expect(t).toMatchObject({ kind: 'int', size: Number(attr(r, 'size')), bits: Number(attr(r, 'nr_bits')), signed: attr(r, 'encoding') === 'SIGNED' });
      } else if (r.kind === 'ARRAY') {
        expect(asArray(btf.describe(r.id)).length).toBe(Number(attr(r, 'nr_elems')));
      } else if (r.kind === 'ENUM' || r.kind === 'ENUM64') {
        const t = asEnum(btf.describe(r.id));
        expect(t.size).toBe(Number(attr(r, 'size')));
        expect(t.signed).toBe(attr(r, 'encoding') === 'SIGNED');
        expect(t.values.map((v) => [v.name, v.value])).toEqual(r.members.map((m) => [m.name, BigInt(attr(m, 'val'))]));
      } else if (r.kind === 'FLOAT') {
        expect(btf.describe(r.id)).toEqual({ kind: 'float', name: r.name, size: Number(attr(r, 'size')) });
      }
    }
    expect(structs).toBeGreaterThanOrEqual(12);
  });
});

// ---------------------------------------------------------------------------
// Hand-made blobs
// ---------------------------------------------------------------------------

const K = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

/** Builds little-endian BTF blobs word by word, so tests can also break them. */
class BlobBuilder {
  private readonly strBytes: number[] = [0];
  private readonly strOffsets = new Map<string, number>();
  private readonly words: number[] = [];

  str(s: string): number {
    if (s === '') return 0;
    const known = this.strOffsets.get(s);
    if (known !== undefined) return known;
    const off = this.strBytes.length;
    this.strBytes.push(...new TextEncoder().encode(s), 0);
    this.strOffsets.set(s, off);
    return off;
  }

  /** Appends one record; `tail` is the kind-specific data as u32 words. Returns nothing: ids are positional. */
  type(name: string, kind: number, vlen: number, sizeOrType: number, tail: number[] = [], kindFlag = false): this {
    const info = ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen;
    this.words.push(this.str(name), info >>> 0, sizeOrType, ...tail.map((w) => w >>> 0));
    return this;
  }

  int(name: string, size: number, bits: number, encoding = 0, bitOffset = 0): this {
    return this.type(name, K.INT, 0, size, [(encoding << 24) | (bitOffset << 16) | bits]);
  }

  build(patch: { magic?: number; version?: number; hdrLen?: number; typeLen?: number; strOff?: number; strLen?: number } = {}): Uint8Array {
    const hdrLen = 24;
    const typeLen = this.words.length * 4;
    const total = hdrLen + typeLen + this.strBytes.length;
    const buf = new Uint8Array(total);
    const v = new DataView(buf.buffer);
    v.setUint16(0, patch.magic ?? 0xeb9f, true);
    v.setUint8(2, patch.version ?? 1);
    v.setUint8(3, 0);
    v.setUint32(4, patch.hdrLen ?? hdrLen, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, patch.typeLen ?? typeLen, true);
    v.setUint32(16, patch.strOff ?? typeLen, true);
    v.setUint32(20, patch.strLen ?? this.strBytes.length, true);
    this.words.forEach((w, i) => v.setUint32(hdrLen + 4 * i, w, true));
    buf.set(this.strBytes, hdrLen + typeLen);
    return buf;
  }
}

function expectBtfError(fn: () => unknown, fragment: string | RegExp): BtfError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BtfError);
    const err = e as BtfError;
    if (typeof fragment === 'string') expect(err.message).toContain(fragment);
    else expect(err.message).toMatch(fragment);
    return err;
  }
  throw new Error(`expected a BtfError matching ${String(fragment)}`);
}

describe('Btf on hand-made blobs', () => {
  it('parses a minimal blob with no types', () => {
    const btf = Btf.parse(new BlobBuilder().build());
    expect(btf.typeCount).toBe(0);
    expect(btf.describe(0).kind).toBe('void');
  });

  it('rejects a bad magic', () => {
    const err = expectBtfError(() => Btf.parse(new BlobBuilder().build({ magic: 0x1234 })), 'bad BTF magic 0x1234 at byte offset 0');
    expect(err.offset).toBe(0);
  });

  it('rejects big-endian BTF with a clear message', () => {
    expectBtfError(() => Btf.parse(new BlobBuilder().build({ magic: 0x9feb })), 'big-endian BTF');
  });

  it('rejects an unsupported version', () => {
    expectBtfError(() => Btf.parse(new BlobBuilder().build({ version: 2 })), 'unsupported BTF version 2');
  });

  it('rejects a truncated header', () => {
    const full = new BlobBuilder().build();
    expectBtfError(() => Btf.parse(full.subarray(0, 10)), 'BTF truncated: 10 bytes');
    expectBtfError(() => Btf.parse(full.subarray(0, 2)), 'BTF truncated: 2 bytes');
    expectBtfError(() => Btf.parse(new Uint8Array(0)), 'BTF truncated: 0 bytes');
  });

  it('rejects a header length beyond the blob or below 24', () => {
    expectBtfError(() => Btf.parse(new BlobBuilder().build({ hdrLen: 4096 })), 'header length 4096 at byte offset 4 exceeds the blob size');
    expectBtfError(() => Btf.parse(new BlobBuilder().build({ hdrLen: 16 })), 'below the minimum 24');
  });

  it('rejects sections that run past the end of the blob', () => {
    const b = new BlobBuilder().int('int', 4, 32, 1);
    expectBtfError(() => Btf.parse(b.build({ typeLen: 400 })), /type section \[24, 424\) runs past the end of the blob/);
    expectBtfError(() => Btf.parse(b.build({ strLen: 400 })), 'string section');
  });

  it('rejects a type record running past the end of the type section', () => {
    // A struct claiming 3 members (36 bytes of trailer) with room for one.
    const b = new BlobBuilder().int('int', 4, 32, 1);
    b.type('s', K.STRUCT, 3, 4, [b.str('x'), 1, 0]);
    const err = expectBtfError(() => Btf.parse(b.build()), 'type id 2 (STRUCT, vlen 3) at byte offset 40 runs past the end of the type section: needs 48 bytes, 24 left');
    expect(err.typeId).toBe(2);
    expect(err.offset).toBe(40);
    // Half a common record left over.
    const half = new BlobBuilder().int('int', 4, 32, 1).build();
    const dv = new DataView(half.buffer);
    dv.setUint32(12, 16 + 6, true);
    dv.setUint32(16, 16 + 8, true);
    const grown = new Uint8Array(half.byteLength + 8);
    grown.set(half.subarray(0, 24 + 16));
    grown.set(half.subarray(24 + 16), 24 + 24);
    expectBtfError(() => Btf.parse(grown), 'type id 2 at byte offset 40 runs past the end of the type section: needs 12 bytes, 6 left');
  });

  it('rejects unknown kinds', () => {
    const b = new BlobBuilder().type('x', 20, 0, 0);
    expectBtfError(() => Btf.parse(b.build()), 'unknown BTF kind 20 for type id 1 at byte offset 24');
    expectBtfError(() => Btf.parse(new BlobBuilder().type('', 0, 0, 0).build()), 'unknown BTF kind 0');
  });

  it('rejects out-of-range type ids, in references and in lookups', () => {
    const b = new BlobBuilder().int('int', 4, 32, 1).type('t', K.TYPEDEF, 0, 99);
    expectBtfError(() => Btf.parse(b.build()), 'type id 2 (TYPEDEF) at byte offset 40 refers to target type id 99, out of range (valid ids are 0..2)');
    const m = new BlobBuilder().int('int', 4, 32, 1);
    m.type('s', K.STRUCT, 1, 4, [m.str('a'), 7, 0]);
    expectBtfError(() => Btf.parse(m.build()), 'refers to member 0 type id 7, out of range');
    const ok = Btf.parse(new BlobBuilder().int('int', 4, 32, 1).build());
    expectBtfError(() => ok.describe(2), 'type id 2 out of range (valid ids are 0..1)');
    expectBtfError(() => ok.describe(-1), 'type id -1 out of range');
    expectBtfError(() => ok.describe(1.5), 'type id 1.5 out of range');
    expectBtfError(() => ok.nameOf(5), 'type id 5 out of range');
  });

  it('rejects string offsets outside the string section', () => {
    const b = new BlobBuilder().int('int', 4, 32, 1);
    b.type('', K.TYPEDEF, 0, 1);
    const blob = b.build();
    new DataView(blob.buffer).setUint32(24 + 16, 500, true); // name_off of type 2
    expectBtfError(() => Btf.parse(blob), 'string offset 500 used by type id 2 (byte offset 40) is outside the string section');
  });

  it('detects a self-referential typedef', () => {
    const btf = Btf.parse(new BlobBuilder().type('loop_t', K.TYPEDEF, 0, 1).build());
    const err = expectBtfError(() => btf.describe(1), 'type reference cycle through type id 1');
    expect(err.typeId).toBe(1);
    expect(btf.nameOf(1)).toBe('loop_t');
  });

  it('detects cycles through qualifiers and through struct members', () => {
    const q = Btf.parse(new BlobBuilder().type('', K.CONST, 0, 2).type('', K.VOLATILE, 0, 3).type('a_t', K.TYPEDEF, 0, 1).build());
    expectBtfError(() => q.describe(3), 'type reference cycle');
    const b = new BlobBuilder();
    b.type('a', K.STRUCT, 1, 8, [b.str('b'), 2, 0]);
    b.type('b', K.STRUCT, 1, 8, [b.str('a'), 3, 0]);
    b.type('a_t', K.TYPEDEF, 0, 1);
    const s = Btf.parse(b.build());
    expectBtfError(() => s.describe(1), 'type reference cycle through type id 1');
    // A failed describe must not poison later, unrelated lookups.
    expect(s.nameOf(2)).toBe('b');
    expectBtfError(() => s.describe(3), 'type reference cycle');
    const arr = Btf.parse(new BlobBuilder().type('', K.ARRAY, 0, 0, [1, 0, 2]).build());
    expectBtfError(() => arr.describe(1), 'type reference cycle through type id 1');
  });

  it('bounds typedef chains and nesting depth', () => {
    const chain = new BlobBuilder().int('int', 4, 32, 1);
    for (let i = 0; i < 200; i++) chain.type(`t${i}`, K.TYPEDEF, 0, i + 1);
    expectBtfError(() => Btf.parse(chain.build()).describe(201), 'chain from type id 201 is longer than 64');
    const nest = new BlobBuilder().int('int', 4, 32, 1);
    for (let i = 0; i < 200; i++) nest.type('', K.ARRAY, 0, 0, [i + 1, 1, 1]);
    expectBtfError(() => Btf.parse(nest.build()).describe(201), 'nesting deeper than 64');
  });

  it('walks all 19 kinds with their trailing data', () => {
    const b = new BlobBuilder();
    b.int('int', 4, 32, 1); // 1
    b.type('', K.PTR, 0, 1); // 2
    b.type('', K.ARRAY, 0, 0, [1, 1, 3]); // 3
    b.type('s', K.STRUCT, 2, 8, [b.str('x'), 1, 0, b.str('y'), 1, 32]); // 4
    b.type('u', K.UNION, 2, 4, [b.str('p'), 1, 0, b.str('q'), 1, 0]); // 5
    b.type('e', K.ENUM, 2, 4, [b.str('E0'), 0, b.str('E1'), 7]); // 6
    b.type('fwd', K.FWD, 0, 0); // 7
    b.type('int_t', K.TYPEDEF, 0, 1); // 8
    b.type('', K.VOLATILE, 0, 8); // 9
    b.type('', K.CONST, 0, 9); // 10
    b.type('', K.RESTRICT, 0, 2); // 11
    b.type('', K.FUNC_PROTO, 3, 1, [b.str('a'), 1, b.str('b'), 2, 0, 0]); // 12 (last param: varargs)
    b.type('fn', K.FUNC, 2, 12); // 13, vlen is the linkage (2 = extern), not a count
    b.type('gv', K.VAR, 0, 1, [1]); // 14
    b.type('.data', K.DATASEC, 2, 8, [14, 0, 4, 14, 4, 4]); // 15
    b.type('double', K.FLOAT, 0, 8); // 16
    b.type('tag', K.DECL_TAG, 0, 4, [0xffffffff]); // 17
    b.type('user', K.TYPE_TAG, 0, 1); // 18
    b.type('e64', K.ENUM64, 2, 8, [b.str('BIG'), 0, 1, b.str('NEG'), 0xfffffffe, 0xffffffff], true); // 19
    b.type('last', K.STRUCT, 1, 4, [b.str('v'), 10, 0]); // 20
    const btf = Btf.parse(b.build());
    expect(btf.typeCount).toBe(20);
    expect(Array.from({ length: 20 }, (_, i) => btf.kindOf(i + 1))).toEqual([
      'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const', 'restrict',
      'func_proto', 'func', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64', 'struct',
    ]);
    expect(btf.findByName('last', 'struct')).toBe(20);
    expect(btf.describe(20)).toMatchObject({ kind: 'struct', name: 'last', size: 4, members: [{ name: 'v', offset: 0, type: { kind: 'int', name: 'int_t' } }] });
    expect(btf.describe(3)).toMatchObject({ kind: 'array', name: '', size: 12, length: 3 });
    expect(btf.describe(11)).toEqual({ kind: 'pointer', name: '', size: 8 });
    expect(btf.describe(18)).toMatchObject({ kind: 'int', name: 'int' });
    expect(btf.describe(19)).toEqual({
      kind: 'enum', name: 'e64', size: 8, signed: true,
      values: [{ name: 'BIG', value: 0x100000000n }, { name: 'NEG', value: -2n }],
    });
    expect(btf.findByName('e64', 'enum')).toBe(19);
    expect(btf.findByName('fn')).toBe(13);
    expectBtfError(() => btf.describe(7), 'forward declaration');
    expectBtfError(() => btf.describe(12), 'FUNC_PROTO, not a data type');
    expect(() => btf.findByName('x', 'nonsense')).toThrow(RangeError);
  });

  it('reads enum signedness from kind_flag, and unsigned 64-bit enum values', () => {
    const b = new BlobBuilder();
    b.type('s', K.ENUM, 2, 4, [b.str('NEG'), -1, b.str('POS'), 3], true);
    b.type('u', K.ENUM, 1, 4, [b.str('HI'), 0xffffffff]);
    b.type('u64', K.ENUM64, 1, 8, [b.str('MAX'), 0xffffffff, 0xffffffff]);
    const btf = Btf.parse(b.build());
    expect(btf.describe(1)).toEqual({ kind: 'enum', name: 's', size: 4, signed: true, values: [{ name: 'NEG', value: -1n }, { name: 'POS', value: 3n }] });
    expect(btf.describe(2)).toMatchObject({ signed: false, values: [{ name: 'HI', value: 0xffffffffn }] });
    expect(btf.describe(3)).toMatchObject({ signed: false, values: [{ name: 'MAX', value: 0xffffffffffffffffn }] });
  });

  it('reads bitfields encoded without kind_flag (narrow INT types)', () => {
    const b = new BlobBuilder();
    b.int('unsigned int', 4, 32); // 1
    b.int('unsigned int', 4, 3); // 2: a 3-bit bitfield type
    b.int('int', 4, 5, 1, 2); // 3: 5 signed bits, 2 bits into the int
    b.type('s', K.STRUCT, 3, 8, [b.str('x'), 2, 0, b.str('y'), 3, 3, b.str('z'), 1, 32]);
    const s = asStruct(Btf.parse(b.build()).describe(4));
    expect(s.members.map((m) => [m.name, m.offset, m.bitOffset, m.bitSize])).toEqual([
      ['x', 0, 0, 3],
      ['y', 0, 5, 5],
      ['z', 4, 32, 0],
    ]);
    expect(flattenFields(s).map((f) => [f.path, f.offset, f.size, f.bitOffset, f.bitSize])).toEqual([
      ['x', 0, 1, 0, 3],
      ['y', 0, 2, 5, 5],
      ['z', 4, 4, 32, 0],
    ]);
  });

  it('typedef naming for anonymous structs, pointers and enums', () => {
    const b = new BlobBuilder();
    b.int('unsigned int', 4, 32); // 1
    b.type('', K.STRUCT, 1, 4, [b.str('v'), 1, 0]); // 2
    b.type('anon_t', K.TYPEDEF, 0, 2); // 3
    b.type('', K.PTR, 0, 0); // 4
    b.type('handle_t', K.TYPEDEF, 0, 4); // 5
    b.type('color', K.ENUM, 1, 4, [b.str('RED'), 0]); // 6
    b.type('color_t', K.TYPEDEF, 0, 6); // 7
    b.type('', K.CONST, 0, 7); // 8
    b.type('inner_t', K.TYPEDEF, 0, 1); // 9
    b.type('outer_t', K.TYPEDEF, 0, 9); // 10
    const btf = Btf.parse(b.build());
    expect(btf.describe(3)).toMatchObject({ kind: 'struct', name: 'anon_t' });
    expect(btf.describe(2)).toMatchObject({ kind: 'struct', name: '' });
    expect(btf.describe(5)).toEqual({ kind: 'pointer', name: 'handle_t', size: 8 });
    expect(btf.describe(8)).toMatchObject({ kind: 'enum', name: 'color' });
    expect(btf.describe(10)).toMatchObject({ kind: 'int', name: 'outer_t' });
    expect(btf.resolveId(10)).toBe(1);
    // Cached descriptions are shared, so they are frozen.
    expect(Object.isFrozen(btf.describe(3))).toBe(true);
  });

  it('rejects members that are misaligned or extend past their struct', () => {
    const b = new BlobBuilder().int('int', 4, 32, 1);
    b.type('s', K.STRUCT, 1, 8, [b.str('m'), 1, 12]);
    expectBtfError(() => Btf.parse(b.build()).describe(2), "member 'm' (#0) of type id 2 at byte offset 40 is not byte aligned (bit offset 12)");
    const c = new BlobBuilder().int('int', 4, 32, 1);
    c.type('s', K.STRUCT, 1, 4, [c.str('m'), 1, 32]);
    expectBtfError(() => Btf.parse(c.build()).describe(2), 'ends at bit 64, past the 4-byte size of its STRUCT');
    const d = new BlobBuilder().int('int', 4, 32, 1);
    d.type('s', K.STRUCT, 1, 4, [d.str('m'), 1, (40 << 24) | 0], true);
    expectBtfError(() => Btf.parse(d.build()).describe(2), 'has a 40-bit bitfield in a 4-byte type');
  });

  it('rejects invalid INT encodings', () => {
    expectBtfError(() => Btf.parse(new BlobBuilder().int('x', 3, 24).build()), 'INT type id 1 at byte offset 24 has invalid size 3');
    expectBtfError(() => Btf.parse(new BlobBuilder().int('x', 4, 33).build()), 'does not fit in 4 bytes');
    expectBtfError(() => Btf.parse(new BlobBuilder().int('x', 4, 32, 3).build()), 'invalid encoding 3');
  });

  it('rejects a string section without the leading or trailing NUL', () => {
    const blob = new BlobBuilder().int('int', 4, 32, 1).build();
    const bad = blob.slice();
    bad[bad.length - 1] = 0x41;
    expectBtfError(() => Btf.parse(bad), 'does not end with a NUL byte');
    const bad2 = blob.slice();
    bad2[24 + 16] = 0x41;
    expectBtfError(() => Btf.parse(bad2), 'must start with a NUL byte');
  });

  it('flattenFields: scalars, multi-dimensional arrays of structs, and the field limit', () => {
    expect(flattenFields({ kind: 'int', name: '__u32', size: 4, signed: false, bits: 32, char: false, bool: false }, 'key')).toEqual([
      { path: 'key', offset: 0, size: 4, type: { kind: 'int', name: '__u32', size: 4, signed: false, bits: 32, char: false, bool: false }, bitSize: 0, bitOffset: 0 },
    ]);
    const b = new BlobBuilder();
    b.int('unsigned short', 2, 16); // 1
    b.type('p', K.STRUCT, 2, 4, [b.str('x'), 1, 0, b.str('y'), 1, 16]); // 2
    b.type('', K.ARRAY, 0, 0, [2, 1, 3]); // 3: p[3]
    b.type('', K.ARRAY, 0, 0, [3, 1, 2]); // 4: p[2][3]
    b.type('grid', K.STRUCT, 1, 24, [b.str('cells'), 4, 0]); // 5
    const grid = Btf.parse(b.build()).describe(5);
    const fields = flattenFields(grid);
    expect(fields).toHaveLength(12);
    expect(layout(fields).slice(0, 3)).toEqual([['cells[0][0].x', 0, 2, 0], ['cells[0][0].y', 2, 2, 0], ['cells[0][1].x', 4, 2, 0]]);
    expect(layout(fields).slice(-1)).toEqual([['cells[1][2].y', 22, 2, 0]]);
    expect(() => flattenFields(grid, '', 5)).toThrow(RangeError);
  });
});
