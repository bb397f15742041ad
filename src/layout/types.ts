/** Byte layouts of map keys and values: which bytes are which field, and how to read them. */

/** Integer field types: host order (u*, s*) or network order (be*). */
export type IntTypeName = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'be16' | 'be32' | 'be64';

export type FieldType =
  | { kind: 'int'; name: IntTypeName; size: 1 | 2 | 4 | 8; signed: boolean; bigEndian: boolean }
  /** char[N]: a NUL-terminated string of at most N bytes. */
  | { kind: 'char'; size: number }
  /** u8[N]: raw bytes. */
  | { kind: 'bytes'; size: number }
  /** pad[N]: skipped. */
  | { kind: 'pad'; size: number };

export interface LayoutField {
  /** The field's name; from BTF, nested members are joined with dots (`addr.port`). */
  name: string;
  /** Byte offset inside one key, or inside one (per-CPU slot of a) value. */
  offset: number;
  size: number;
  type: FieldType;
  /** Names of enum values when BTF says the field is an enum (value -> name). */
  enumNames?: ReadonlyMap<bigint, string>;
}

export interface Layout {
  fields: readonly LayoutField[];
  /** Sum of the field sizes: equals the map's key_size or value_size. */
  size: number;
  /** Where the layout came from, for messages. */
  origin: 'config' | 'btf';
}
