import { native, copyNative, lastErrno } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { Btf, type BtfType } from './btf-parse.js';
import { NEEDS_SYS_ADMIN, type BpfMap } from './map.js';

/** A BTF object of the kernel by id, parsed in JS from its raw bytes. Needs CAP_SYS_ADMIN. */
export function loadKernelBtf(btfId: number, label?: string): Btf {
  const handle = native.btfLoadFromKernelById(btfId);
  // libbpf 1.x returns NULL and sets errno on failure.
  if (handle === null) {
    const errno = lastErrno() || Errno.ENOENT;
    throw new BpfError(`load BTF id ${btfId}`, errno, { map: label, detail: NEEDS_SYS_ADMIN[errno] });
  }
  try {
    return parseLibbpfBtf(handle);
  } finally {
    native.btfFree(handle);
  }
}

/** Parse a libbpf `struct btf *` (which stays libbpf's) from its raw bytes. */
export function parseLibbpfBtf(handle: unknown): Btf {
  const size = new Uint32Array(1);
  const raw = native.btfRawData(handle, size);
  return Btf.parse(copyNative(raw, size[0]));
}

export interface MapBtf {
  key: BtfType;
  value: BtfType;
  btf: Btf;
}

/**
 * The key and value types of a map from its BTF, or undefined when it carries none. A map of an
 * object we loaded is described by the object's BTF; any other map's BTF is loaded by id.
 */
export function mapBtf(map: BpfMap): MapBtf | undefined {
  const { btfId, btfKeyTypeId, btfValueTypeId } = map.info;
  if (btfId === 0 || btfValueTypeId === 0) return undefined;
  const btf = map.btf ?? loadKernelBtf(btfId, map.label);
  return { key: btf.describe(btfKeyTypeId), value: btf.describe(btfValueTypeId), btf };
}
