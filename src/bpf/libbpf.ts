/**
 * libbpf.so.1 through koffi: the only module that imports koffi. Everything here is a thin,
 * typed declaration of a C symbol; the semantics (cursors, errno rules) live in map.ts and batch.ts.
 * Every function returns libbpf 1.x's `-errno` convention: we use return values, never errno,
 * because the runtime may clobber errno between the call and our read of it.
 */
import koffi from 'koffi';
import { logger } from '../log.js';

const lib = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

type Ptr = Buffer | Uint8Array | Uint32Array | null;

// perf_buffer_sample_fn and perf_buffer_lost_fn (libbpf.h), for perf_buffer__new.
export const PerfBufferSampleFn = koffi.proto('void PerfBufferSampleFn(void *ctx, int cpu, void *data, uint32_t size)');
export const PerfBufferLostFn = koffi.proto('void PerfBufferLostFn(void *ctx, int cpu, uint64_t cnt)');

export const native = {
  lookupBatch: lib.func('int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, void *opts)') as
    (fd: number, inBatch: Ptr, outBatch: Ptr, keys: Ptr, values: Ptr, count: Uint32Array, opts: Ptr) => number,
  lookupAndDeleteBatch: lib.func('int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, void *opts)') as
    (fd: number, inBatch: Ptr, outBatch: Ptr, keys: Ptr, values: Ptr, count: Uint32Array, opts: Ptr) => number,
  updateBatch: lib.func('int bpf_map_update_batch(int fd, void *keys, void *values, void *count, void *opts)') as
    (fd: number, keys: Ptr, values: Ptr, count: Uint32Array, opts: Ptr) => number,
  deleteBatch: lib.func('int bpf_map_delete_batch(int fd, void *keys, void *count, void *opts)') as
    (fd: number, keys: Ptr, count: Uint32Array, opts: Ptr) => number,
  getNextKey: lib.func('int bpf_map_get_next_key(int fd, void *key, void *next_key)') as
    (fd: number, key: Ptr, next: Ptr) => number,
  lookupElemFlags: lib.func('int bpf_map_lookup_elem_flags(int fd, void *key, void *value, uint64_t flags)') as
    (fd: number, key: Ptr, value: Ptr, flags: number) => number,
  lookupAndDeleteElem: lib.func('int bpf_map_lookup_and_delete_elem(int fd, void *key, void *value)') as
    (fd: number, key: Ptr, value: Ptr) => number,
  deleteElem: lib.func('int bpf_map_delete_elem(int fd, void *key)') as (fd: number, key: Ptr) => number,
  updateElem: lib.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)') as
    (fd: number, key: Ptr, value: Ptr, flags: number) => number,
  freeze: lib.func('int bpf_map_freeze(int fd)') as (fd: number) => number,
  objGetOpts: lib.func('int bpf_obj_get_opts(const char *path, void *opts)') as (path: string, opts: Ptr) => number,
  objPin: lib.func('int bpf_obj_pin(int fd, const char *path)') as (fd: number, path: string) => number,
  mapGetNextId: lib.func('int bpf_map_get_next_id(uint32_t start, void *next)') as (start: number, next: Uint32Array) => number,
  mapGetFdByIdOpts: lib.func('int bpf_map_get_fd_by_id_opts(uint32_t id, void *opts)') as (id: number, opts: Ptr) => number,
  progGetNextId: lib.func('int bpf_prog_get_next_id(uint32_t start, void *next)') as (start: number, next: Uint32Array) => number,
  // NULL for a type this libbpf does not know (newer than it).
  progTypeStr: lib.func('const char *libbpf_bpf_prog_type_str(int t)') as (t: number) => string | null,
  progGetFdById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)') as (id: number) => number,
  objGetInfoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *info_len)') as
    (fd: number, info: Ptr, len: Uint32Array) => number,
  mapCreate: lib.func('int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, void *opts)') as
    (type: number, name: string | null, keySize: number, valueSize: number, maxEntries: number, opts: Ptr) => number,
  numPossibleCpus: lib.func('int libbpf_num_possible_cpus()') as () => number,
  btfLoadFromKernelById: lib.func('void *btf__load_from_kernel_by_id(uint32_t id)') as (id: number) => unknown,
  btfRawData: lib.func('const void *btf__raw_data(const void *btf, void *size)') as (btf: unknown, size: Uint32Array) => unknown,
  btfFree: lib.func('void btf__free(void *btf)') as (btf: unknown) => void,
  objectOpenFile: lib.func('void *bpf_object__open_file(const char *path, void *opts)') as (path: string, opts: Ptr) => unknown,
  objectLoad: lib.func('int bpf_object__load(void *obj)') as (obj: unknown) => number,
  objectClose: lib.func('void bpf_object__close(void *obj)') as (obj: unknown) => void,
  objectFindMapByName: lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)') as (obj: unknown, name: string) => unknown,
  objectBtf: lib.func('void *bpf_object__btf(const void *obj)') as (obj: unknown) => unknown,
  objectNextMap: lib.func('void *bpf_object__next_map(const void *obj, const void *prev)') as (obj: unknown, prev: unknown) => unknown,
  mapName: lib.func('const char *bpf_map__name(const void *map)') as (map: unknown) => string,
  mapType: lib.func('int bpf_map__type(const void *map)') as (map: unknown) => number,
  mapKeySize: lib.func('uint32_t bpf_map__key_size(const void *map)') as (map: unknown) => number,
  mapValueSize: lib.func('uint32_t bpf_map__value_size(const void *map)') as (map: unknown) => number,
  mapFd: lib.func('int bpf_map__fd(void *map)') as (map: unknown) => number,
  objectFindProgramByName: lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)') as (obj: unknown, name: string) => unknown,
  programFd: lib.func('int bpf_program__fd(void *prog)') as (prog: unknown) => number,
  objectNextProgram: lib.func('void *bpf_object__next_program(void *obj, void *prev)') as (obj: unknown, prev: unknown) => unknown,
  programName: lib.func('const char *bpf_program__name(void *prog)') as (prog: unknown) => string,
  programSectionName: lib.func('const char *bpf_program__section_name(void *prog)') as (prog: unknown) => string,
  programAttach: lib.func('void *bpf_program__attach(void *prog)') as (prog: unknown) => unknown,
  programAttachXdp: lib.func('void *bpf_program__attach_xdp(void *prog, int ifindex)') as (prog: unknown, ifindex: number) => unknown,
  linkDestroy: lib.func('int bpf_link__destroy(void *link)') as (link: unknown) => number,
  progTestRunOpts: lib.func('int bpf_prog_test_run_opts(int fd, void *opts)') as (fd: number, opts: Buffer) => number,
  programType: lib.func('int bpf_program__type(void *prog)') as (prog: unknown) => number,
  // Before bpf_object__load only: for sections libbpf does not know (ebpf_exporter's perf_event/..., xdp/IFNAME).
  programSetType: lib.func('int bpf_program__set_type(void *prog, int type)') as (prog: unknown, type: number) => number,
  programSetExpectedAttachType: lib.func('int bpf_program__set_expected_attach_type(void *prog, int type)') as (prog: unknown, type: number) => number,
  // A global data map's (.rodata, .data, .bss) bytes before load; psize is a size_t out.
  mapInitialValue: lib.func('void *bpf_map__initial_value(void *map, void *psize)') as (map: unknown, psize: Buffer) => unknown,
  mapSetInitialValue: lib.func('int bpf_map__set_initial_value(void *map, const void *data, size_t size)') as (map: unknown, data: Buffer, size: number) => number,
  // The link owns pfd from then on: bpf_link__destroy disables the event and closes it.
  programAttachPerfEvent: lib.func('void *bpf_program__attach_perf_event(void *prog, int pfd)') as (prog: unknown, pfd: number) => unknown,
  // A perf buffer over a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one ring per CPU; the callbacks run inside consume.
  perfBufferNew: lib.func('void *perf_buffer__new(int map_fd, size_t page_cnt, PerfBufferSampleFn *sample_cb, PerfBufferLostFn *lost_cb, void *ctx, void *opts)') as
    (fd: number, pages: number, sample: unknown, lost: unknown, ctx: null, opts: null) => unknown,
  perfBufferConsume: lib.func('int perf_buffer__consume(void *pb)') as (pb: unknown) => number,
  perfBufferFree: lib.func('void perf_buffer__free(void *pb)') as (pb: unknown) => void,
  // struct bpf_tc_hook and struct bpf_tc_opts are built byte by byte in tc.ts.
  tcHookCreate: lib.func('int bpf_tc_hook_create(void *hook)') as (hook: Buffer) => number,
  tcHookDestroy: lib.func('int bpf_tc_hook_destroy(void *hook)') as (hook: Buffer) => number,
  tcAttach: lib.func('int bpf_tc_attach(void *hook, void *opts)') as (hook: Buffer, opts: Buffer) => number,
  tcDetach: lib.func('int bpf_tc_detach(void *hook, void *opts)') as (hook: Buffer, opts: Buffer) => number,
};

// perf_event_open(2) has no libc wrapper: it is called through syscall(2), whose number differs by arch.
const PERF_EVENT_OPEN: Partial<Record<string, number>> = { x64: 298, arm64: 241 };
const syscall = libc.func('long syscall(long number, ...)') as (number: number, ...typed: unknown[]) => number;
const closeFd = libc.func('int close(int fd)') as (fd: number) => number;

/**
 * perf_event_open(attr, pid, cpu, group_fd, flags): the new fd, or -errno. `attr` is a struct
 * perf_event_attr built byte-exact by the caller (perf-event.ts).
 */
export function perfEventOpen(attr: Buffer, pid: number, cpu: number, groupFd: number, flags: number): number {
  const nr = PERF_EVENT_OPEN[process.arch];
  if (nr === undefined) return -38; // ENOSYS: an arch whose syscall number we do not know
  const fd = syscall(nr, 'void *', attr, 'int', pid, 'int', cpu, 'int', groupFd, 'unsigned long', flags);
  return fd < 0 ? -(koffi.errno() || 22) : fd;
}

// A ring buffer's pages are mapped into our memory (ring-buffer.ts reads them as libbpf does).
const mmapFn = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)') as
  (addr: null, length: number, prot: number, flags: number, fd: number, offset: number) => unknown;
const munmapFn = libc.func('int munmap(void *addr, size_t length)') as (addr: unknown, length: number) => number;
const getpagesize = libc.func('int getpagesize()') as () => number;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
const MAP_SHARED = 1;

const pthreadSigmask = libc.func('int pthread_sigmask(int how, void *set, void *oldset)') as (how: number, set: Buffer | null, oldset: Buffer | null) => number;
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** glibc's sigset_t: 1024 bits, whatever the architecture. */
const SIGSET_BYTES = 128;

/**
 * Run `fn` with every signal blocked in this thread (signals sent meanwhile are delivered when it
 * returns). For the verifier: it gives up with EAGAIN when the loading thread has a signal pending,
 * and libbpf's five retries all failed under a profiler's SIGPROF every 50 µs (`node --cpu-prof
 * --cpu-prof-interval 50`: 4 loads of latency.bpf.o in 5 failed). SIGKILL and SIGSTOP cannot be
 * blocked, and glibc keeps its own internal signals.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const old = Buffer.alloc(SIGSET_BYTES);
  if (pthreadSigmask(SIG_BLOCK, Buffer.alloc(SIGSET_BYTES, 0xff), old) !== 0) return fn();
  try {
    return fn();
  } finally {
    pthreadSigmask(SIG_SETMASK, old, null);
  }
}

/** The page size, which a ring buffer's mmap offsets are counted in. */
export const pageSize: number = getpagesize();

/** A shared mapping of `length` bytes of `fd` from `offset`, and an ArrayBuffer over it (no copy); or -errno. */
export function mapShared(fd: number, length: number, offset: number, prot: number): { ptr: unknown; bytes: ArrayBuffer } | number {
  const ptr = mmapFn(null, length, prot, MAP_SHARED, fd, offset);
  // MAP_FAILED is (void *)-1.
  if (ptr === null || koffi.address(ptr as never) === 0xffffffffffffffffn) return -(koffi.errno() || 22);
  return { ptr, bytes: koffi.view(ptr as never, length) as ArrayBuffer };
}

/** Undo mapShared. Every view over the mapping must be dropped first: touching one afterwards is a crash. */
export function unmap(ptr: unknown, length: number): void {
  munmapFn(ptr, length);
}

const clockGettime = libc.func('int clock_gettime(int clock, void *ts)') as (clock: number, ts: Buffer) => number;
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const timespec = Buffer.alloc(16);

function clockNs(clock: number): bigint {
  clockGettime(clock, timespec);
  return timespec.readBigInt64LE(0) * 1_000_000_000n + timespec.readBigInt64LE(8);
}

/**
 * Wall time minus monotonic time, in ns: what turns a bpf_ktime_get_ns() stamp (CLOCK_MONOTONIC)
 * into Unix time. The wall clock is read between two monotonic reads and set against their middle;
 * of three such brackets the narrowest counts, since a thread preempted inside one (it happens: one
 * reading in a hundred was 1.3 ms off on a loaded 2-core machine) widens it. Asked again at each use:
 * NTP slews the wall clock against the monotonic one.
 */
export function wallMinusMonotonicNs(): bigint {
  const brackets: [bigint, bigint, bigint][] = [];
  for (let i = 0; i < 3; i++) brackets.push([clockNs(CLOCK_MONOTONIC), clockNs(CLOCK_REALTIME), clockNs(CLOCK_MONOTONIC)]);
  return offsetOfNarrowest(brackets);
}

/** Of [monotonic before, wall, monotonic after] brackets, the offset the narrowest gives. */
export function offsetOfNarrowest(brackets: readonly (readonly [bigint, bigint, bigint])[]): bigint {
  let best = brackets[0];
  for (const b of brackets) if (b[2] - b[0] < best[2] - best[0]) best = b;
  return best[1] - (best[0] + best[2]) / 2n;
}

/** close(2) of an fd that native code handed us (a perf event fd no link took over). */
export function closeNativeFd(fd: number): void {
  closeFd(fd);
}

// glibc's malloc serves a freed large block's size from its heap from then on (its mmap threshold
// rises up to 32 MB) and keeps the freed heap memory: the multi-MB buffers a cycle at high cardinality
// allocates and frees (a /metrics document, an OTLP request) then pile up in RSS. A fixed threshold
// keeps every block of 128 KiB or more in its own mapping, returned to the system when it is freed.
// Measured at 100,000 series: steady RSS 180-190 MB -> 152-166 MB (BENCHMARKS.md, "Memory").
const M_MMAP_THRESHOLD = -3;
let mallopt: ((param: number, value: number) => number) | undefined;
try {
  mallopt = libc.func('int mallopt(int param, int value)') as (param: number, value: number) => number;
} catch {
  mallopt = undefined; // a libc without mallopt: nothing to tune
}

/** Keep allocations of `bytes` or more in mappings of their own (see above); false where libc does not take it. */
export function setMmapThreshold(bytes: number): boolean {
  return mallopt !== undefined && mallopt(M_MMAP_THRESHOLD, bytes) === 1;
}

/** errno of the last native call, for the few libbpf functions that return NULL instead of -errno. */
export function lastErrno(): number {
  return koffi.errno();
}

/** A JS function as a C callback of `proto` for as long as the process runs (registered once). */
export function registerCallback(fn: (...args: never[]) => unknown, proto: unknown): unknown {
  return koffi.register(fn, koffi.pointer(proto as never));
}

/** View `len` bytes of native memory owned by libbpf as a Buffer copy (the native memory may be freed next). */
export function copyNative(ptr: unknown, len: number): Buffer {
  return Buffer.from(koffi.view(ptr as never, len)).subarray(0, len);
}

// libbpf prints through a callback taking a va_list. On x86-64 a va_list argument decays to a pointer
// and on arm64 (AAPCS64) a 32-byte va_list is passed by reference, so handing the pointer straight to
// vsnprintf formats the message on both.
const vsnprintf = libc.func('int vsnprintf(void *buf, size_t size, void *fmt, void *ap)') as
  (buf: Buffer, size: number, fmt: unknown, ap: unknown) => number;
const PrintFn = koffi.proto('int bpf_map_exporter_libbpf_print(int level, void *fmt, void *ap)');
const setPrint = lib.func('void *libbpf_set_print(void *fn)') as (fn: unknown) => unknown;
// Large enough for a verifier log, which libbpf prints in one piece.
const printBuf = Buffer.alloc(256 * 1024);
const LEVELS = ['warn', 'info', 'debug'] as const;

let captured: string[] | undefined;
let quiet = false;

/**
 * Run `fn` and return what libbpf printed meanwhile (as well as logging it): the verifier's log of
 * a failed load, say. libbpf prints synchronously from the calls `fn` makes.
 */
export function captureLibbpfOutput<T>(fn: () => T, opts: { quiet?: boolean } = {}): { result: T; output: string[] } {
  const outer = captured;
  const outerQuiet = quiet;
  captured = [];
  // quiet: the caller judges the messages (an expected refusal) and logs what matters itself; a
  // quiet capture stays quiet through the captures nested in it.
  quiet = outerQuiet || opts.quiet === true;
  const output = captured;
  try {
    return { result: fn(), output };
  } finally {
    captured = outer;
    quiet = outerQuiet;
  }
}

function onLibbpfPrint(level: number, fmt: unknown, ap: unknown): number {
  try {
    const n = vsnprintf(printBuf, printBuf.length, fmt, ap);
    const text = printBuf.toString('utf8', 0, Math.max(0, Math.min(n, printBuf.length - 1))).trimEnd();
    captured?.push(text);
    if (quiet) return n;
    const method = LEVELS[level] ?? 'debug';
    logger[method]({ source: 'libbpf' }, text);
    return n;
  } catch {
    // A throw must never cross back into C.
    return 0;
  }
}

setPrint(koffi.register(onLibbpfPrint, koffi.pointer(PrintFn)));
