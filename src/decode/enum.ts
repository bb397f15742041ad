import { isInt, needs, type DecoderFactory } from './field.js';
import { naturalIntReader } from './int.js';

/** enum: a BTF enum field's value -> its enumerator's name; values BTF does not name print as the number. */
export const createEnumDecoder: DecoderFactory = (field) => {
  const names = field.enumNames;
  if (!isInt(field) || names === undefined) needs('enum', field, 'an integer field with enum names from BTF');
  const read = naturalIntReader(field.type);
  return {
    name: 'enum',
    decode(buf, offset) {
      const v = read(buf, offset);
      return names.get(BigInt(v)) ?? String(v);
    },
  };
};
