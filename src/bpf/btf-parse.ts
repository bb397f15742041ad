/**
 * Pure TypeScript reader for raw BTF (BPF Type Format) blobs: the bytes of the
 * `.BTF` ELF section of a clang-compiled BPF object, or what libbpf's
 * `btf__raw_data()` / the kernel's BTF_OBJ_GET_INFO hand back.
 *
 * The exporter uses it to learn the layout of map keys and values without
 * native code, so everything here is defensive: the blob may come from an
 * untrusted or newer producer, and a malformed blob must end in a BtfError,
 * never in an infinite loop, a stack overflow or a stray TypeError.
 *
 * Layout reference: Documentation/bpf/btf.rst in the Linux kernel tree.
 *
 * Naming rule for typedefs (see `Btf.describe`): typedefs and the qualifiers
 * const / volatile / restrict / type_tag are resolved through. The name of the
 * outermost typedef in the chain replaces the resolved type's name when the
 * resolved type is an `int` or is anonymous. So `__u32` gives
 * `{ kind: 'int', name: '__u32' }`, `counter_t` (a typedef of `__u64`) gives
 * name `counter_t`, and `typedef struct { ... } foo_t` gives name `foo_t`,
 * while `typedef struct val val_t` keeps the struct's own name `val`:
 * integers are mostly known by their typedef (the C name `unsigned int` says
 * less than `__u32` or `pid_t`), but a named struct, union, enum or float is
 * best identified by its own name.
 */
import { ExporterError } from '../util/errors.js';

const BTF_MAGIC = 0xeb9f;
const BTF_MAGIC_SWAPPED = 0x9feb;
const BTF_VERSION = 1;
/** magic(2) version(1) flags(1) hdr_len type_off type_len str_off str_len (4 each). */
const BTF_MIN_HEADER_LEN = 24;
const TYPE_RECORD_LEN = 12;
/**
 * Bound on nested type resolution. The kernel's own limit is 32
 * (MAX_RESOLVE_DEPTH); a bit of slack keeps legitimate but unusual types
 * working while still stopping hostile chains long before the JS stack runs
 * out.
 */
const MAX_DEPTH = 64;

/** BTF_KIND_* numbers, as in include/uapi/linux/btf.h. */
export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;
export type BtfKindNumber = (typeof BtfKind)[keyof typeof BtfKind];

/** Lower-case BTF kind names, as accepted by `Btf.findByName`. */
export type BtfKindName =
  | 'int' | 'ptr' | 'array' | 'struct' | 'union' | 'enum' | 'fwd' | 'typedef' | 'volatile' | 'const'
  | 'restrict' | 'func' | 'func_proto' | 'var' | 'datasec' | 'float' | 'decl_tag' | 'type_tag' | 'enum64';

const KIND_NAMES: readonly (BtfKindName | undefined)[] = [
  undefined, 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
  'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64',
];

const INT_SIGNED = 1 << 0;
const INT_CHAR = 1 << 1;
const INT_BOOL = 1 << 2;

export type BtfType =
  | { kind: 'int'; name: string; size: number; signed: boolean; bits: number; char: boolean; bool: boolean }
  | { kind: 'float'; name: string; size: number }
  /** BTF_KIND_ENUM and BTF_KIND_ENUM64; `signed` comes from the kind_flag. */
  | { kind: 'enum'; name: string; size: number; signed: boolean; values: { name: string; value: bigint }[] }
  | { kind: 'struct' | 'union'; name: string; size: number; members: BtfMember[] }
  | { kind: 'array'; name: string; size: number; length: number; element: BtfType }
  /** Always 8 bytes: BPF is a 64-bit target. The pointee is not described. */
  | { kind: 'pointer'; name: string; size: number }
  | { kind: 'void'; name: string; size: 0 };

export interface BtfMember {
  /** '' for anonymous struct/union members. */
  name: string;
  /** Bytes from the start of the containing struct: floor(bitOffset / 8). */
  offset: number;
  /** Bits from the start of the containing struct. */
  bitOffset: number;
  /** 0 unless a bitfield. */
  bitSize: number;
  type: BtfType;
}

/**
 * Thrown for malformed or unsupported BTF. `offset` is the absolute byte
 * offset in the blob where known, `typeId` the type involved where known.
 */
export class BtfError extends ExporterError {
  declare readonly code: 'ERR_BTF';
  readonly offset: number | undefined;
  readonly typeId: number | undefined;

  constructor(message: string, where: { offset?: number; typeId?: number } = {}) {
    super('ERR_BTF', message);
    this.offset = where.offset;
    this.typeId = where.typeId;
  }
}

/** One record of the type section, with its trailing data left in place. */
interface RawType {
  readonly id: number;
  readonly kind: BtfKindNumber;
  readonly kindFlag: boolean;
  readonly vlen: number;
  readonly nameOff: number;
  /** `size` for INT, ENUM, STRUCT, UNION, DATASEC, FLOAT, ENUM64; `type` for the rest. */
  readonly sizeOrType: number;
  /** Absolute byte offset of the record in the blob. */
  readonly offset: number;
}

const QUALIFIER_KINDS: ReadonlySet<number> = new Set([
  BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG,
]);

function kindLabel(kind: number): string {
  return KIND_NAMES[kind]?.toUpperCase() ?? `kind ${kind}`;
}

/** Bytes following the 12-byte common record, per kind (btf.rst section 2.2). */
function trailerLength(kind: number, vlen: number): number | undefined {
  switch (kind) {
    case BtfKind.INT: return 4;
    case BtfKind.ARRAY: return 12;
    case BtfKind.STRUCT:
    case BtfKind.UNION: return 12 * vlen;
    case BtfKind.ENUM: return 8 * vlen;
    case BtfKind.FUNC_PROTO: return 8 * vlen;
    case BtfKind.VAR: return 4;
    case BtfKind.DATASEC: return 12 * vlen;
    case BtfKind.DECL_TAG: return 4;
    case BtfKind.ENUM64: return 12 * vlen;
    // FUNC reuses vlen for its linkage, which is not a count: no trailer.
    case BtfKind.PTR:
    case BtfKind.FWD:
    case BtfKind.TYPEDEF:
    case BtfKind.VOLATILE:
    case BtfKind.CONST:
    case BtfKind.RESTRICT:
    case BtfKind.FUNC:
    case BtfKind.FLOAT:
    case BtfKind.TYPE_TAG: return 0;
    default: return undefined;
  }
}

function kindNumbers(kind: string): ReadonlySet<number> {
  const n = KIND_NAMES.indexOf((kind === 'pointer' ? 'ptr' : kind) as BtfKindName);
  if (n <= 0) throw new RangeError(`unknown BTF kind name '${kind}'`);
  return n === BtfKind.ENUM ? new Set([BtfKind.ENUM, BtfKind.ENUM64]) : new Set([n]);
}

const VOID: BtfType = Object.freeze({ kind: 'void', name: 'void', size: 0 });

function deepFreeze<T extends BtfType>(t: T): T {
  // Descriptions are cached and shared between callers, so they must not be
  // mutable; nested types are already frozen when they were built.
  if (t.kind === 'struct' || t.kind === 'union') {
    for (const m of t.members) Object.freeze(m);
    Object.freeze(t.members);
  } else if (t.kind === 'enum') {
    for (const v of t.values) Object.freeze(v);
    Object.freeze(t.values);
  }
  return Object.freeze(t);
}

export class Btf {
  /** Highest valid type id; ids 1..typeCount are records, 0 is void. */
  readonly typeCount: number;

  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly strStart: number;
  private readonly strEnd: number;
  /** Index 0 is a placeholder for void. */
  private readonly types: RawType[];
  private readonly strings = new Map<number, string>();
  private readonly described = new Map<number, BtfType>();
  private readonly inProgress = new Set<number>();
  private nameIndex: Map<string, number[]> | undefined;
  private static readonly decoder = new TextDecoder('utf-8', { fatal: false });

  private constructor(bytes: Uint8Array, strStart: number, strEnd: number, types: RawType[]) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.strStart = strStart;
    this.strEnd = strEnd;
    this.types = types;
    this.typeCount = types.length - 1;
  }

  /**
   * Validates the header and walks the whole type section once, so that
   * every later lookup can rely on record bounds, string offsets and type id
   * references being in range. The input is copied: later changes to the
   * caller's buffer cannot invalidate that.
   */
  static parse(raw: Uint8Array): Btf {
    if (!(raw instanceof Uint8Array)) throw new BtfError('BTF input must be a Uint8Array');
    // `new Uint8Array(x)` copies; Buffer#slice would not.
    const bytes = new Uint8Array(raw);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const len = bytes.byteLength;

    if (len < 4) throw new BtfError(`BTF truncated: ${len} bytes, the header alone needs ${BTF_MIN_HEADER_LEN}`, { offset: 0 });
    const magic = view.getUint16(0, true);
    if (magic === BTF_MAGIC_SWAPPED) {
      throw new BtfError('big-endian BTF (magic bytes eb 9f) is not supported: only little-endian BTF can be read', { offset: 0 });
    }
    if (magic !== BTF_MAGIC) {
      throw new BtfError(`bad BTF magic 0x${magic.toString(16).padStart(4, '0')} at byte offset 0, expected 0xeb9f`, { offset: 0 });
    }
    const version = view.getUint8(2);
    if (version !== BTF_VERSION) throw new BtfError(`unsupported BTF version ${version} at byte offset 2, expected ${BTF_VERSION}`, { offset: 2 });
    if (len < BTF_MIN_HEADER_LEN) {
      throw new BtfError(`BTF truncated: ${len} bytes, the header alone needs ${BTF_MIN_HEADER_LEN}`, { offset: len });
    }
    const hdrLen = view.getUint32(4, true);
    if (hdrLen < BTF_MIN_HEADER_LEN) throw new BtfError(`BTF header length ${hdrLen} at byte offset 4 is below the minimum ${BTF_MIN_HEADER_LEN}`, { offset: 4 });
    if (hdrLen > len) throw new BtfError(`BTF header length ${hdrLen} at byte offset 4 exceeds the blob size ${len}`, { offset: 4 });
    // A longer header is a newer format; like the kernel, only accept it when
    // the fields we do not know are zero, so that nothing gets misread.
    for (let i = BTF_MIN_HEADER_LEN; i < hdrLen; i++) {
      if (bytes[i] !== 0) throw new BtfError(`BTF header has unknown non-zero data at byte offset ${i}`, { offset: i });
    }
    const typeOff = view.getUint32(8, true);
    const typeLen = view.getUint32(12, true);
    const strOff = view.getUint32(16, true);
    const strLen = view.getUint32(20, true);
    const dataLen = len - hdrLen;
    if (typeOff % 4 !== 0) throw new BtfError(`BTF type section offset ${typeOff} (header byte offset 8) is not 4-byte aligned`, { offset: 8 });
    if (typeOff + typeLen > dataLen) {
      throw new BtfError(`BTF type section [${hdrLen + typeOff}, ${hdrLen + typeOff + typeLen}) runs past the end of the blob (${len} bytes)`, { offset: 12 });
    }
    if (strOff + strLen > dataLen) {
      throw new BtfError(`BTF string section [${hdrLen + strOff}, ${hdrLen + strOff + strLen}) runs past the end of the blob (${len} bytes)`, { offset: 20 });
    }
    if (typeLen > 0 && strLen > 0 && typeOff < strOff + strLen && strOff < typeOff + typeLen) {
      throw new BtfError('BTF type and string sections overlap', { offset: 8 });
    }
    const strStart = hdrLen + strOff;
    const strEnd = strStart + strLen;
    // Offset 0 must name the empty string: every anonymous type relies on it.
    if (strLen === 0 || bytes[strStart] !== 0) {
      throw new BtfError(`BTF string section at byte offset ${strStart} must start with a NUL byte`, { offset: strStart });
    }
    if (bytes[strEnd - 1] !== 0) {
      throw new BtfError(`BTF string section does not end with a NUL byte (byte offset ${strEnd - 1})`, { offset: strEnd - 1 });
    }

    const types: RawType[] = [{ id: 0, kind: BtfKind.INT, kindFlag: false, vlen: 0, nameOff: 0, sizeOrType: 0, offset: -1 }];
    const typeStart = hdrLen + typeOff;
    const typeEnd = typeStart + typeLen;
    let pos = typeStart;
    while (pos < typeEnd) {
      const id = types.length;
      if (typeEnd - pos < TYPE_RECORD_LEN) {
        throw new BtfError(`type id ${id} at byte offset ${pos} runs past the end of the type section: needs ${TYPE_RECORD_LEN} bytes, ${typeEnd - pos} left`, { offset: pos, typeId: id });
      }
      const nameOff = view.getUint32(pos, true);
      const info = view.getUint32(pos + 4, true);
      const sizeOrType = view.getUint32(pos + 8, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const kindFlag = (info >>> 31) === 1;
      const trailer = trailerLength(kind, vlen);
      if (trailer === undefined) throw new BtfError(`unknown BTF kind ${kind} for type id ${id} at byte offset ${pos}`, { offset: pos, typeId: id });
      if (typeEnd - pos - TYPE_RECORD_LEN < trailer) {
        throw new BtfError(
          `type id ${id} (${kindLabel(kind)}, vlen ${vlen}) at byte offset ${pos} runs past the end of the type section: needs ${TYPE_RECORD_LEN + trailer} bytes, ${typeEnd - pos} left`,
          { offset: pos, typeId: id },
        );
      }
      types.push({ id, kind: kind as BtfKindNumber, kindFlag, vlen, nameOff, sizeOrType, offset: pos });
      pos += TYPE_RECORD_LEN + trailer;
    }

    const btf = new Btf(bytes, strStart, strEnd, types);
    btf.validate();
    return btf;
  }

  /** Raw BTF kind name of a type ('int', 'struct', 'typedef', ...); 'void' for id 0. */
  kindOf(typeId: number): BtfKindName | 'void' {
    if (typeId === 0) return 'void';
    const kind = KIND_NAMES[this.raw(typeId).kind];
    // raw() only returns records whose kind passed trailerLength().
    if (kind === undefined) throw new BtfError(`unknown BTF kind for type id ${typeId}`, { typeId });
    return kind;
  }

  /** The record's own name: '' for anonymous types, 'void' for id 0. No typedef resolution. */
  nameOf(typeId: number): string {
    if (typeId === 0) return 'void';
    const t = this.raw(typeId);
    return this.str(t.nameOff, t);
  }

  /**
   * First type id (lowest) whose own name is `name`, optionally restricted to
   * a raw BTF kind name (see BtfKindName). 'enum' also matches ENUM64 and
   * 'pointer' is accepted for 'ptr', mirroring what `describe` returns.
   * Without a kind, a VAR or FUNC of the same name can match first.
   */
  findByName(name: string, kind?: string): number | undefined {
    const kinds = kind === undefined ? undefined : kindNumbers(kind);
    if (this.nameIndex === undefined) {
      const index = new Map<string, number[]>();
      for (let id = 1; id <= this.typeCount; id++) {
        const n = this.nameOf(id);
        if (n === '') continue;
        const ids = index.get(n);
        if (ids === undefined) index.set(n, [id]);
        else ids.push(id);
      }
      this.nameIndex = index;
    }
    const ids = this.nameIndex.get(name);
    if (ids === undefined) return undefined;
    if (kinds === undefined) return ids[0];
    return ids.find((id) => kinds.has(this.raw(id).kind));
  }

  /**
   * Describes a data type, resolving typedefs and qualifiers (naming rule at
   * the top of this file). Type id 0 is void. Throws BtfError for ids out of
   * range, for kinds that are not data types (FUNC, FUNC_PROTO, VAR, DATASEC,
   * DECL_TAG, FWD), for reference cycles and for nesting deeper than 64.
   * Results are cached and frozen.
   */
  describe(typeId: number): BtfType {
    return this.describeAt(typeId, 0);
  }

  /** Follows typedefs and qualifiers to the first other kind; returns that id (0 for void). */
  resolveId(typeId: number): number {
    return this.skipQualifiers(typeId).id;
  }

  /**
   * The global variable `name` in a DATASEC (.rodata, .data, .bss...): the section's name, and the
   * variable's byte offset in it and size, as libbpf fixed them up at open. Undefined when no
   * DATASEC holds a variable of that name.
   */
  globalVariable(name: string): { section: string; offset: number; size: number } | undefined {
    for (let id = 1; id <= this.typeCount; id++) {
      const t = this.types[id];
      if (t.kind !== BtfKind.DATASEC) continue;
      for (let i = 0; i < t.vlen; i++) {
        const at = t.offset + TYPE_RECORD_LEN + 12 * i;
        const varId = this.view.getUint32(at, true);
        if (this.raw(varId).kind !== BtfKind.VAR || this.nameOf(varId) !== name) continue;
        return { section: this.str(t.nameOff, t), offset: this.view.getUint32(at + 4, true), size: this.view.getUint32(at + 8, true) };
      }
    }
    return undefined;
  }

  /** Names of the global variables: those of every DATASEC but `.maps` (which holds map definitions). */
  globalVariableNames(): string[] {
    const names: string[] = [];
    for (let id = 1; id <= this.typeCount; id++) {
      const t = this.types[id];
      if (t.kind !== BtfKind.DATASEC || this.str(t.nameOff, t) === '.maps') continue;
      for (let i = 0; i < t.vlen; i++) {
        const varId = this.view.getUint32(t.offset + TYPE_RECORD_LEN + 12 * i, true);
        if (this.raw(varId).kind === BtfKind.VAR) names.push(this.nameOf(varId));
      }
    }
    return names;
  }

  private raw(typeId: number): RawType {
    if (!Number.isInteger(typeId) || typeId < 0 || typeId > this.typeCount) {
      throw new BtfError(`type id ${typeId} out of range (valid ids are 0..${this.typeCount})`, { typeId: Number.isInteger(typeId) ? typeId : undefined });
    }
    return this.types[typeId];
  }

  private checkStr(off: number, owner: RawType): void {
    if (off >= this.strEnd - this.strStart) {
      throw new BtfError(
        `string offset ${off} used by type id ${owner.id} (byte offset ${owner.offset}) is outside the string section (${this.strEnd - this.strStart} bytes)`,
        { offset: owner.offset, typeId: owner.id },
      );
    }
  }

  private str(off: number, owner: RawType): string {
    const cached = this.strings.get(off);
    if (cached !== undefined) return cached;
    this.checkStr(off, owner);
    const start = this.strStart + off;
    // parse() checked that the section ends in NUL, so this always finds one.
    const end = this.bytes.indexOf(0, start);
    const s = Btf.decoder.decode(this.bytes.subarray(start, end));
    this.strings.set(off, s);
    return s;
  }

  private checkRef(ref: number, owner: RawType, what: string): void {
    if (ref > this.typeCount) {
      throw new BtfError(
        `type id ${owner.id} (${kindLabel(owner.kind)}) at byte offset ${owner.offset} refers to ${what} type id ${ref}, out of range (valid ids are 0..${this.typeCount})`,
        { offset: owner.offset, typeId: owner.id },
      );
    }
  }

  /** Checks names and type id references of every record, so later walks can trust them. */
  private validate(): void {
    const v = this.view;
    for (let id = 1; id <= this.typeCount; id++) {
      const t = this.types[id];
      const tail = t.offset + TYPE_RECORD_LEN;
      this.checkStr(t.nameOff, t);
      switch (t.kind) {
        case BtfKind.INT: {
          const enc = v.getUint32(tail, true);
          const bits = enc & 0xff;
          const bitOff = (enc >>> 16) & 0xff;
          const encoding = (enc >>> 24) & 0x0f;
          if (![1, 2, 4, 8, 16].includes(t.sizeOrType)) {
            throw new BtfError(`INT type id ${id} at byte offset ${t.offset} has invalid size ${t.sizeOrType}`, { offset: t.offset, typeId: id });
          }
          if (bits === 0 || bitOff + bits > t.sizeOrType * 8) {
            throw new BtfError(`INT type id ${id} at byte offset ${t.offset} has ${bits} bits at bit offset ${bitOff}, which does not fit in ${t.sizeOrType} bytes`, { offset: t.offset, typeId: id });
          }
          if (encoding !== 0 && encoding !== INT_SIGNED && encoding !== INT_CHAR && encoding !== INT_BOOL) {
            throw new BtfError(`INT type id ${id} at byte offset ${t.offset} has invalid encoding ${encoding}`, { offset: t.offset, typeId: id });
          }
          break;
        }
        case BtfKind.PTR:
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.TYPE_TAG:
        case BtfKind.FUNC:
        case BtfKind.VAR:
        case BtfKind.DECL_TAG:
          this.checkRef(t.sizeOrType, t, 'target');
          break;
        case BtfKind.ARRAY:
          this.checkRef(v.getUint32(tail, true), t, 'element');
          this.checkRef(v.getUint32(tail + 4, true), t, 'index');
          break;
        case BtfKind.STRUCT:
        case BtfKind.UNION:
          for (let i = 0; i < t.vlen; i++) {
            this.checkStr(v.getUint32(tail + 12 * i, true), t);
            this.checkRef(v.getUint32(tail + 12 * i + 4, true), t, `member ${i}`);
          }
          break;
        case BtfKind.ENUM:
        case BtfKind.ENUM64: {
          const step = t.kind === BtfKind.ENUM ? 8 : 12;
          for (let i = 0; i < t.vlen; i++) this.checkStr(v.getUint32(tail + step * i, true), t);
          break;
        }
        case BtfKind.FUNC_PROTO:
          this.checkRef(t.sizeOrType, t, 'return');
          for (let i = 0; i < t.vlen; i++) {
            this.checkStr(v.getUint32(tail + 8 * i, true), t);
            this.checkRef(v.getUint32(tail + 8 * i + 4, true), t, `parameter ${i}`);
          }
          break;
        case BtfKind.DATASEC:
          for (let i = 0; i < t.vlen; i++) this.checkRef(v.getUint32(tail + 12 * i, true), t, `variable ${i}`);
          break;
        case BtfKind.FWD:
        case BtfKind.FLOAT:
          break;
      }
    }
  }

  /** Walks TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG; remembers the outermost typedef's name. */
  private skipQualifiers(typeId: number): { id: number; typedefName: string | undefined } {
    let id = typeId;
    let typedefName: string | undefined;
    const seen = new Set<number>();
    for (;;) {
      const t = this.raw(id);
      if (id === 0 || !QUALIFIER_KINDS.has(t.kind)) return { id, typedefName };
      if (seen.has(id)) {
        throw new BtfError(`type reference cycle through type id ${id} (${kindLabel(t.kind)} at byte offset ${t.offset})`, { offset: t.offset, typeId: id });
      }
      if (seen.size >= MAX_DEPTH) {
        throw new BtfError(`qualifier/typedef chain from type id ${typeId} is longer than ${MAX_DEPTH}`, { typeId });
      }
      seen.add(id);
      if (t.kind === BtfKind.TYPEDEF && typedefName === undefined) typedefName = this.str(t.nameOff, t);
      id = t.sizeOrType;
    }
  }

  private describeAt(typeId: number, depth: number): BtfType {
    if (depth > MAX_DEPTH) throw new BtfError(`type nesting deeper than ${MAX_DEPTH} at type id ${typeId}`, { typeId });
    const cached = this.described.get(typeId);
    if (cached !== undefined) return cached;
    const { id, typedefName } = this.skipQualifiers(typeId);
    let out = this.describeBase(id, depth);
    if (typedefName !== undefined && (out.kind === 'int' || out.name === '')) {
      out = typedefName === out.name ? out : deepFreeze({ ...out, name: typedefName });
    }
    this.described.set(typeId, out);
    return out;
  }

  private describeBase(id: number, depth: number): BtfType {
    if (id === 0) return VOID;
    const cached = this.described.get(id);
    if (cached !== undefined) return cached;
    const t = this.raw(id);
    if (this.inProgress.has(id)) {
      throw new BtfError(`type reference cycle through type id ${id} (${kindLabel(t.kind)} at byte offset ${t.offset})`, { offset: t.offset, typeId: id });
    }
    this.inProgress.add(id);
    try {
      const out = deepFreeze(this.build(t, depth));
      this.described.set(id, out);
      return out;
    } finally {
      this.inProgress.delete(id);
    }
  }

  private build(t: RawType, depth: number): BtfType {
    const v = this.view;
    const tail = t.offset + TYPE_RECORD_LEN;
    const name = this.str(t.nameOff, t);
    switch (t.kind) {
      case BtfKind.INT: {
        const enc = v.getUint32(tail, true);
        const encoding = (enc >>> 24) & 0x0f;
        return {
          kind: 'int',
          name,
          size: t.sizeOrType,
          signed: (encoding & INT_SIGNED) !== 0,
          bits: enc & 0xff,
          // Neither clang nor pahole sets BTF_INT_CHAR (clang marks plain
          // `char` SIGNED on x86), so the C name is the only usable signal.
          char: (encoding & INT_CHAR) !== 0 || name === 'char',
          bool: (encoding & INT_BOOL) !== 0,
        };
      }
      case BtfKind.FLOAT:
        return { kind: 'float', name, size: t.sizeOrType };
      case BtfKind.PTR:
        return { kind: 'pointer', name, size: 8 };
      case BtfKind.ENUM:
      case BtfKind.ENUM64: {
        const values: { name: string; value: bigint }[] = [];
        for (let i = 0; i < t.vlen; i++) {
          if (t.kind === BtfKind.ENUM) {
            const at = tail + 8 * i;
            const value = t.kindFlag ? BigInt(v.getInt32(at + 4, true)) : BigInt(v.getUint32(at + 4, true));
            values.push({ name: this.str(v.getUint32(at, true), t), value });
          } else {
            const at = tail + 12 * i;
            const u = (BigInt(v.getUint32(at + 8, true)) << 32n) | BigInt(v.getUint32(at + 4, true));
            values.push({ name: this.str(v.getUint32(at, true), t), value: t.kindFlag ? BigInt.asIntN(64, u) : u });
          }
        }
        return { kind: 'enum', name, size: t.sizeOrType, signed: t.kindFlag, values };
      }
      case BtfKind.ARRAY: {
        const elemId = v.getUint32(tail, true);
        const length = v.getUint32(tail + 8, true);
        const element = this.describeAt(elemId, depth + 1);
        return { kind: 'array', name, size: element.size * length, length, element };
      }
      case BtfKind.STRUCT:
      case BtfKind.UNION:
        return { kind: t.kind === BtfKind.STRUCT ? 'struct' : 'union', name, size: t.sizeOrType, members: this.members(t, depth) };
      default: {
        const what = t.kind === BtfKind.FWD ? 'a forward declaration (incomplete type)' : `a ${kindLabel(t.kind)}, not a data type`;
        throw new BtfError(`type id ${t.id} at byte offset ${t.offset} is ${what}`, { offset: t.offset, typeId: t.id });
      }
    }
  }

  private members(t: RawType, depth: number): BtfMember[] {
    const v = this.view;
    const members: BtfMember[] = [];
    const structBits = t.sizeOrType * 8;
    for (let i = 0; i < t.vlen; i++) {
      const at = t.offset + TYPE_RECORD_LEN + 12 * i;
      const name = this.str(v.getUint32(at, true), t);
      const typeId = v.getUint32(at + 4, true);
      const offWord = v.getUint32(at + 8, true);
      let bitOffset = t.kindFlag ? offWord & 0xffffff : offWord;
      let bitSize = t.kindFlag ? offWord >>> 24 : 0;
      const type = this.describeAt(typeId, depth + 1);
      if (!t.kindFlag && type.kind === 'int') {
        // Without kind_flag, older encoders (pahole before kind_flag existed)
        // describe a bitfield through a dedicated INT whose nr_bits/offset
        // are narrower than its size.
        const rawInt = this.raw(this.resolveId(typeId));
        const intOff = (v.getUint32(rawInt.offset + TYPE_RECORD_LEN, true) >>> 16) & 0xff;
        if (intOff !== 0 || type.bits !== type.size * 8) {
          bitOffset += intOff;
          bitSize = type.bits;
        }
      }
      const label = `member '${name || '(anon)'}' (#${i}) of type id ${t.id} at byte offset ${t.offset}`;
      if (bitSize === 0 && bitOffset % 8 !== 0) throw new BtfError(`${label} is not byte aligned (bit offset ${bitOffset})`, { offset: at, typeId: t.id });
      if (bitSize > 0 && bitSize > type.size * 8) throw new BtfError(`${label} has a ${bitSize}-bit bitfield in a ${type.size}-byte type`, { offset: at, typeId: t.id });
      const end = bitOffset + (bitSize > 0 ? bitSize : type.size * 8);
      if (end > structBits) {
        throw new BtfError(`${label} ends at bit ${end}, past the ${t.sizeOrType}-byte size of its ${kindLabel(t.kind)}`, { offset: at, typeId: t.id });
      }
      members.push({ name, offset: Math.floor(bitOffset / 8), bitOffset, bitSize, type });
    }
    return members;
  }
}
