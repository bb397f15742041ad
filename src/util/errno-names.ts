import { constants } from 'node:os';

/**
 * errno names by number, from node's (libuv's) errno list. Where two names share a number the
 * kernel's own wins (EAGAIN over EWOULDBLOCK, EDEADLK over EDEADLOCK, EOPNOTSUPP over libc's
 * ENOTSUP), and ENOTSUPP (524), which BPF helpers and the bpf syscall return but libc does not
 * define, is added.
 */
export const ERRNO_NAMES: ReadonlyMap<number, string> = (() => {
  const aliases = new Set(['EWOULDBLOCK', 'EDEADLOCK', 'ENOTSUP']);
  const names = new Map<number, string>();
  for (const [name, nr] of Object.entries(constants.errno)) {
    if (!names.has(nr) || aliases.has(names.get(nr) ?? '')) names.set(nr, name);
  }
  names.set(524, 'ENOTSUPP');
  return names;
})();
