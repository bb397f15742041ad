import { constants } from 'node:os';
import { ERRNO_NAMES, LIBBPF_ERRNO_NAMES } from '../util/errno-names.js';
import { ExporterError } from '../util/errors.js';

export const Errno = {
  EPERM: constants.errno.EPERM,
  ENOENT: constants.errno.ENOENT,
  EINTR: constants.errno.EINTR,
  EBADF: constants.errno.EBADF,
  EAGAIN: constants.errno.EAGAIN,
  EACCES: constants.errno.EACCES,
  EFAULT: constants.errno.EFAULT,
  EBUSY: constants.errno.EBUSY,
  EEXIST: constants.errno.EEXIST,
  EINVAL: constants.errno.EINVAL,
  ENOSPC: constants.errno.ENOSPC,
  E2BIG: constants.errno.E2BIG,
  ENOTSUPP: 524,
  EOPNOTSUPP: constants.errno.EOPNOTSUPP,
} as const;

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? LIBBPF_ERRNO_NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

const HINTS: Partial<Record<string, string>> = {
  EPERM: 'not permitted: needs CAP_BPF, or CAP_SYS_ADMIN to list maps and to open maps or BTF by id; or the fd is read-only / the map is frozen',
  EACCES: 'permission denied by the pin\'s file mode; read-only opens need only read permission',
  ENOENT: 'no such map or pin',
  ENOTSUPP: 'the kernel does not support this operation on this map type',
  EINVAL: 'the kernel refused the arguments (an old kernel without batch operations also says this)',
  EFAULT: 'the kernel could not copy to or from our buffers; entries of a drain may have been lost',
};

/**
 * The one error type of src/bpf: an operation on a map failed with an errno.
 * `message` is a single line meant for the user: map, operation, errno name and what it means.
 */
export class BpfError extends ExporterError {
  declare readonly code: 'ERR_BPF';
  readonly errno: number;
  readonly errnoName: string;
  readonly op: string;
  readonly map: string | undefined;
  /** The BPF object file the operation was on, when it was one. */
  readonly object: string | undefined;
  /** Elements the kernel reports as done before the failure (update/delete batch), where known. */
  readonly done: number | undefined;
  /** Upper bound of entries that may have been deleted without being returned (EFAULT during a drain). */
  readonly possibleLoss: number;

  constructor(op: string, errno: number, opts: { map?: string; object?: string; detail?: string; done?: number; possibleLoss?: number } = {}) {
    const name = errnoName(errno);
    // An object file's errors name the object, a map's the map.
    const where = opts.object !== undefined ? `object ${opts.object}: ` : opts.map === undefined ? '' : `map ${opts.map}: `;
    const detail = opts.detail ?? HINTS[name];
    super('ERR_BPF', `${where}${op} failed: ${name}${detail === undefined ? '' : ` (${detail})`}`);
    this.errno = Math.abs(errno);
    this.errnoName = name;
    this.op = op;
    this.map = opts.map;
    this.object = opts.object;
    this.done = opts.done;
    this.possibleLoss = opts.possibleLoss ?? 0;
  }
}
