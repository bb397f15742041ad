/**
 * libbpf 1.1's tc structs, byte by byte (from /usr/include/bpf/libbpf.h), in host order for the
 * little-endian arches the binding runs on (x86-64, arm64). No native code here: unit tests compare
 * them with what C makes of the header.
 */

// enum bpf_tc_attach_point
export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;

/**
 * struct bpf_tc_hook (libbpf 1.1): sz@0 (size_t) ifindex@8 (int) attach_point@12 (enum) parent@16
 * (u32), padded to 24. attach_point ingress|egress names the clsact qdisc itself.
 */
export function tcHook(ifindex: number, attachPoint: number): Buffer {
  const hook = Buffer.alloc(24);
  hook.writeBigUInt64LE(24n, 0);
  hook.writeInt32LE(ifindex, 8);
  hook.writeUInt32LE(attachPoint, 12);
  return hook;
}

/**
 * struct bpf_tc_opts (libbpf 1.1): sz@0 (size_t) prog_fd@8 (int) flags@12 prog_id@16 handle@20
 * priority@24 (u32 each), padded to 32.
 */
export function tcOpts(fields: { progFd?: number; handle?: number; priority?: number }): Buffer {
  const opts = Buffer.alloc(32);
  opts.writeBigUInt64LE(32n, 0);
  opts.writeInt32LE(fields.progFd ?? 0, 8);
  opts.writeUInt32LE(fields.handle ?? 0, 20);
  opts.writeUInt32LE(fields.priority ?? 0, 24);
  return opts;
}

/** What bpf_tc_attach wrote back into its opts: the handle and priority the kernel gave the filter. */
export function tcOptsResult(opts: Buffer): { handle: number; priority: number } {
  return { handle: opts.readUInt32LE(20), priority: opts.readUInt32LE(24) };
}
