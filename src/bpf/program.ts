import { closeSync } from 'node:fs';
import { native } from './libbpf.js';
import { listIds } from './map.js';
import { BpfError, Errno } from './errors.js';

/** enum bpf_prog_type, named as bpftool names them. The index is the kernel's number. */
export const PROG_TYPE_NAMES = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event',
  'cgroup_skb', 'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb', 'cgroup_device',
  'sk_msg', 'raw_tracepoint', 'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2', 'sk_reuseport',
  'flow_dissector', 'cgroup_sysctl', 'raw_tracepoint_writable', 'cgroup_sockopt', 'tracing',
  'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall', 'netfilter',
] as const;

export function progTypeName(type: number): string {
  return PROG_TYPE_NAMES[type] ?? `type_${type}`;
}

/** What bpf_obj_get_info_by_fd says of a program (struct bpf_prog_info, the fields we use). */
export interface ProgramInfo {
  id: number;
  type: number;
  /** bpftool's name of the type: kprobe (uprobes too), tracepoint, xdp, sched_cls, ... */
  typeName: string;
  /** The kernel keeps 15 characters of a program's name. */
  name: string;
  /** The hash of the program's instructions, 16 hex digits, as bpftool shows it. */
  tag: string;
  /** Nanoseconds spent in the program, counted only while the kernel's BPF stats are on. */
  runTimeNs: bigint;
  /** Runs of the program, counted only while the kernel's BPF stats are on. */
  runCount: bigint;
  /**
   * Runs the kernel skipped because a BPF program was already running on that CPU (an interrupt
   * that came in the middle of one, say): events the program never saw. Always counted (5.12 on).
   */
  recursionMisses: bigint;
}

// struct bpf_prog_info up to attach_btf_id (232 bytes, kernel 5.16 on); the kernel fills min(ours, its).
// Offsets: type@0 id@4 tag@8 name@64 run_time_ns@192 run_cnt@200 recursion_misses@208. Every pointer field stays 0: the
// kernel then copies no instructions, maps or line info.
const PROG_INFO_SIZE = 232;

/** What EPERM means for listing programs and opening them by id (CAP_BPF is not enough). */
const NEEDS_SYS_ADMIN: Partial<Record<number, string>> = { [Errno.EPERM]: 'the kernel lets only CAP_SYS_ADMIN list BPF programs and open them by id' };

export function readProgramInfo(fd: number, label?: string): ProgramInfo {
  const buf = Buffer.alloc(PROG_INFO_SIZE);
  const len = new Uint32Array([PROG_INFO_SIZE]);
  const ret = native.objGetInfoByFd(fd, buf, len);
  if (ret < 0) throw new BpfError('get program info', -ret, { map: label });
  const type = buf.readUInt32LE(0);
  const nameEnd = buf.indexOf(0, 64);
  // A kernel older than run_cnt (5.1) or recursion_misses (5.12) fills less: what it did not fill reads 0.
  return {
    id: buf.readUInt32LE(4),
    type,
    typeName: progTypeName(type),
    name: buf.toString('latin1', 64, nameEnd < 0 || nameEnd > 80 ? 80 : nameEnd),
    tag: buf.toString('hex', 8, 16),
    runTimeNs: buf.readBigUInt64LE(192),
    runCount: buf.readBigUInt64LE(200),
    recursionMisses: buf.readBigUInt64LE(208),
  };
}

/** Ids of every BPF program on the host, ascending (needs CAP_SYS_ADMIN). */
export function programIds(): number[] {
  return listIds(native.progGetNextId, 'list program ids', NEEDS_SYS_ADMIN);
}

/**
 * The info of program `id`, read through an fd opened and closed here (needs CAP_SYS_ADMIN);
 * undefined when the program went away since it was listed.
 */
export function programInfoById(id: number): ProgramInfo | undefined {
  const fd = native.progGetFdById(id);
  if (fd === -Errno.ENOENT) return undefined;
  if (fd < 0) throw new BpfError('open program by id', -fd, { map: `program id ${id}`, detail: NEEDS_SYS_ADMIN[-fd] });
  try {
    return readProgramInfo(fd, `program id ${id}`);
  } finally {
    closeSync(fd);
  }
}
