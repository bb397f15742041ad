import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { captureLibbpfOutput, copyNative, native, lastErrno, withSignalsBlocked } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { BpfMap } from './map.js';
import { readProgramInfo } from './program.js';
import { parseLibbpfBtf } from './btf.js';
import type { Btf } from './btf-parse.js';
import { TcHook, type TcSpec } from './tc.js';
import { logger } from '../log.js';
import { closePerfEvent, describePerfEvent, onlineCpus, openPerfEvent, parsePerfEventSection, type AnyPerfEventSpec, type PerfEventSpec, type RawPerfEventSpec } from './perf-event.js';

/** An object's maps and programs as its ELF declares them (BpfObject.inspect). */
export interface ObjectContents {
  /** Every map, .bss/.data/.rodata included; `type` is enum bpf_map_type. */
  maps: { name: string; type: number; keySize: number; valueSize: number }[];
  programs: { name: string; section: string }[];
  /** Global variables (.rodata, .data, .bss...) by name, from its BTF; undefined without BTF. */
  variables?: string[];
}

const BPF_F_TEST_RUN_ON_CPU = 1;
// enum bpf_prog_type: libbpf gives sections tc and classifier SCHED_CLS, perf_event PERF_EVENT.
const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_PROG_TYPE_XDP = 6;
const BPF_PROG_TYPE_PERF_EVENT = 7;
// enum bpf_attach_type, for the sections of ebpf_exporter's conventions.
const BPF_XDP = 37;
const BPF_PERF_EVENT = 41;

/** What BpfObject.load does between opening the object and loading it. */
export interface LoadOptions {
  /**
   * Kernel symbols whose addresses (from /proc/kallsyms) are written into the object's global
   * variables `kaddr_<symbol>` (a `const volatile u64` in .rodata), as ebpf_exporter's `kaddrs`.
   */
  kaddrs?: readonly string[];
}

/**
 * A compiled BPF object (ELF) opened and loaded by libbpf. Its maps and programs belong to it:
 * BpfMaps handed out borrow the object's fds and are closed with it.
 */
export class BpfObject {
  readonly path: string;
  private handle: unknown;
  private readonly maps = new Map<string, BpfMap>();
  /** What attach() did, each with the way to undo it, in order. */
  private attachments: { program: string; undo: () => void }[] = [];
  private parsedBtf: Btf | undefined | null = null;
  /** perf_event programs in ebpf_exporter's section convention, by name: the event their section names. */
  private readonly sectionEvents = new Map<string, RawPerfEventSpec>();

  private constructor(path: string, handle: unknown) {
    this.path = path;
    this.handle = handle;
  }

  /**
   * Open and load `path` (maps created, programs verified). libbpf's messages go to the logger.
   * Programs in ebpf_exporter's sections `perf_event/type=N,config=N,frequency=N` and `xdp/IFNAME`,
   * which libbpf does not know, are given their program type first (a malformed one is an error
   * naming the program and section); `opts.kaddrs` are written into the object's .rodata.
   */
  static load(path: string, opts: LoadOptions = {}): BpfObject {
    const handle = openObjectFile(path, false);
    const obj = new BpfObject(path, handle);
    const sections = new Map(obj.programs().map((p) => [p.name, p.section]));
    try {
      obj.typeConventionSections();
      if (opts.kaddrs !== undefined && opts.kaddrs.length > 0) obj.writeKaddrs(opts.kaddrs);
    } catch (e) {
      obj.close();
      throw e;
    }
    // Signals blocked: the verifier gives up on a load whose thread has one pending (a profiler's SIGPROF).
    const { result: ret, output } = captureLibbpfOutput(() => withSignalsBlocked(() => native.objectLoad(handle)));
    if (ret < 0) {
      obj.close();
      const hint = loadHint(-ret, output, sections);
      const excerpt = verifierExcerpt(output);
      throw new BpfError('load BPF object', -ret, { object: path, detail: hint === undefined ? excerpt : excerpt === undefined ? hint : `${hint}; ${excerpt}` });
    }
    return obj;
  }

  /**
   * What an object holds, read from its ELF by libbpf without loading anything into the kernel (so
   * without privileges): its maps (name, type, key and value sizes, as the kernel will be told them)
   * and its programs (name and ELF section).
   */
  static inspect(path: string): ObjectContents {
    const handle = openObjectFile(path, true);
    try {
      const maps: ObjectContents['maps'] = [];
      for (let m = native.objectNextMap(handle, null); m !== null; m = native.objectNextMap(handle, m)) {
        maps.push({ name: native.mapName(m), type: native.mapType(m), keySize: native.mapKeySize(m), valueSize: native.mapValueSize(m) });
      }
      const programs: ObjectContents['programs'] = [];
      for (let p = native.objectNextProgram(handle, null); p !== null; p = native.objectNextProgram(handle, p)) {
        programs.push({ name: native.programName(p), section: native.programSectionName(p) });
      }
      const btf = native.objectBtf(handle);
      let variables: string[] | undefined;
      try {
        variables = btf === null ? undefined : parseLibbpfBtf(btf).globalVariableNames();
      } catch {
        variables = undefined; // BTF we cannot read: the variables are checked at load instead
      }
      return { maps, programs, ...(variables === undefined ? {} : { variables }) };
    } finally {
      native.objectClose(handle);
    }
  }

  /**
   * Give the programs in ebpf_exporter's section conventions the type libbpf cannot guess from
   * their section: `perf_event/...` (its event parsed and kept for attach) and `xdp/IFNAME`.
   */
  private typeConventionSections(): void {
    for (let p = native.objectNextProgram(this.ptr, null); p !== null; p = native.objectNextProgram(this.ptr, p)) {
      const name = native.programName(p);
      const section = native.programSectionName(p);
      const event = parsePerfEventSection(section);
      let type: number;
      let attachType: number;
      if (typeof event === 'string') {
        throw new BpfError(`open program ${name} (section ${section})`, Errno.EINVAL, { object: this.path, detail: `ebpf_exporter's section convention perf_event/type=N,config=N,frequency=N: ${event}` });
      } else if (event !== undefined) {
        this.sectionEvents.set(name, event);
        [type, attachType] = [BPF_PROG_TYPE_PERF_EVENT, BPF_PERF_EVENT];
      } else if (sectionInterface(section) !== undefined) {
        [type, attachType] = [BPF_PROG_TYPE_XDP, BPF_XDP];
      } else {
        continue;
      }
      const ret = native.programSetType(p, type);
      const ret2 = ret < 0 ? ret : native.programSetExpectedAttachType(p, attachType);
      if (ret2 < 0) throw new BpfError(`set the program type of ${name} (section ${section})`, -ret2, { object: this.path });
    }
  }

  /**
   * Write the address of each kernel symbol of `symbols` (/proc/kallsyms) into the object's global
   * variable `kaddr_<symbol>` before load: in the initial value of the map of its section
   * (.rodata for a `const volatile u64`), at the offset the object's BTF gives it.
   */
  private writeKaddrs(symbols: readonly string[]): void {
    const addrs = kernelSymbolAddresses(symbols);
    const btf = this.btf();
    const sections = new Map<string, { map: unknown; data: Buffer }>();
    for (const symbol of symbols) {
      const variable = `kaddr_${symbol}`;
      const op = `write the address of kernel symbol ${symbol} into ${variable}`;
      const addr = addrs.get(symbol);
      if (addr === undefined) throw new BpfError(op, Errno.ENOENT, { object: this.path, detail: `/proc/kallsyms has no kernel symbol ${symbol}` });
      if (addr === 0n) throw new BpfError(op, Errno.EPERM, { object: this.path, detail: `/proc/kallsyms shows ${symbol} at address 0: kernel.kptr_restrict hides addresses from this process (run as root, or with CAP_SYSLOG and kptr_restrict 1)` });
      const where = btf?.globalVariable(variable);
      if (where === undefined) {
        throw new BpfError(op, Errno.ENOENT, { object: this.path, detail: `the object has no global variable ${variable}${btf === undefined ? ' (it has no BTF: compile it with -g)' : ''}, expected const volatile u64 ${variable}` });
      }
      if (where.size !== 8) throw new BpfError(op, Errno.EINVAL, { object: this.path, detail: `${variable} in ${where.section} is ${where.size} bytes, expected a u64 (8 bytes)` });
      let sec = sections.get(where.section);
      if (sec === undefined) {
        const map = native.objectFindMapByName(this.ptr, where.section);
        const size = Buffer.alloc(8);
        const initial = map === null ? null : native.mapInitialValue(map, size);
        if (map === null || initial === null) throw new BpfError(op, Errno.ENOENT, { object: this.path, detail: `the object has no map for section ${where.section}` });
        sec = { map, data: copyNative(initial, Number(size.readBigUInt64LE(0))) };
        sections.set(where.section, sec);
      }
      if (where.offset + 8 > sec.data.length) throw new BpfError(op, Errno.EINVAL, { object: this.path, detail: `${variable} at offset ${where.offset} lies outside ${where.section} (${sec.data.length} bytes)` });
      sec.data.writeBigUInt64LE(addr, where.offset);
    }
    for (const [section, { map, data }] of sections) {
      const ret = native.mapSetInitialValue(map, data, data.length);
      if (ret < 0) throw new BpfError(`set the initial value of ${section}`, -ret, { object: this.path });
    }
  }

  private get ptr(): unknown {
    if (this.handle === null) throw new BpfError('use BPF object', Errno.EBADF, { object: this.path, detail: 'the object was closed' });
    return this.handle;
  }

  /** The map called `name` in the object. */
  map(name: string): BpfMap {
    let m = this.maps.get(name);
    if (m === undefined) {
      const p = native.objectFindMapByName(this.ptr, name);
      if (p === null) throw new BpfError('find map', Errno.ENOENT, { map: `${this.path}:${name}`, detail: 'the object has no map of that name' });
      m = BpfMap.fromFd(native.mapFd(p), { owned: false, label: `${this.path}:${name}`, btf: this.btf() });
      this.maps.set(name, m);
    }
    return m;
  }

  /** The object's BTF (parsed once), which describes its maps; undefined for an object built without -g. */
  private btf(): Btf | undefined {
    if (this.parsedBtf === null) {
      const handle = native.objectBtf(this.ptr);
      this.parsedBtf = handle === null ? undefined : parseLibbpfBtf(handle);
    }
    return this.parsedBtf;
  }

  /** The fd of the program called `name`. */
  programFd(name: string): number {
    const p = native.objectFindProgramByName(this.ptr, name);
    if (p === null) throw new BpfError(`find program ${name}`, Errno.ENOENT, { object: this.path, detail: 'the object has no program of that name' });
    return native.programFd(p);
  }

  /**
   * Run a program once through BPF_PROG_TEST_RUN, optionally on a given CPU (raw tracepoint
   * programs only). Returns the program's return value.
   */
  testRun(program: string, opts: { cpu?: number } = {}): number {
    // struct bpf_test_run_opts (libbpf 1.1): sz@0 ... retval@56 repeat@60 duration@64 flags@68 cpu@72 batch_size@76.
    const o = Buffer.alloc(80);
    o.writeBigUInt64LE(80n, 0);
    if (opts.cpu !== undefined) {
      o.writeUInt32LE(BPF_F_TEST_RUN_ON_CPU, 68);
      o.writeUInt32LE(opts.cpu, 72);
    }
    const ret = native.progTestRunOpts(this.programFd(program), o);
    if (ret < 0) throw new BpfError(`test run of ${program}`, -ret, { object: this.path });
    return o.readUInt32LE(56);
  }

  /** The programs of the object: name, ELF section (which says how libbpf attaches it) and program type (enum bpf_prog_type). */
  programs(): { name: string; section: string; type: number }[] {
    const out: { name: string; section: string; type: number }[] = [];
    for (let p = native.objectNextProgram(this.ptr, null); p !== null; p = native.objectNextProgram(this.ptr, p)) {
      out.push({ name: native.programName(p), section: native.programSectionName(p), type: native.programType(p) });
    }
    return out;
  }

  /**
   * Attach every program by its section (tracepoint, raw_tracepoint, kprobe/kretprobe, fentry/fexit,
   * uprobe with a target in the section...); XDP programs to the interfaces named in `xdp` (program
   * name -> interface), else, for ebpf_exporter's `xdp/IFNAME` sections, to IFNAME; tc programs
   * (sections tc and classifier) to the clsact hook `tc` names; perf_event programs to the event
   * `perfEvent` describes, else the one their `perf_event/...` section names, on every online CPU. Programs whose
   * option is not given, sections libbpf cannot attach by themselves, and programs meant only for
   * test runs (`raw_tp` without a tracepoint) are skipped and returned. Everything attached is
   * undone by detach() or close(). A failure undoes what this call attached before it throws.
   */
  attach(opts: { xdp?: Readonly<Record<string, string>>; tc?: TcSpec; perfEvent?: PerfEventSpec } = {}): { attached: string[]; skipped: string[] } {
    const attached: string[] = [];
    const skipped: string[] = [];
    const before = this.attachments.length;
    try {
      for (let p = native.objectNextProgram(this.ptr, null); p !== null; p = native.objectNextProgram(this.ptr, p)) {
        const name = native.programName(p);
        const section = native.programSectionName(p);
        const way = attachWay(section, native.programType(p));
        if (way === 'xdp') {
          // The config's interface; else the one an xdp/IFNAME section names.
          const ifname = opts.xdp?.[name] ?? sectionInterface(section);
          if (ifname === undefined) {
            skipped.push(name);
            continue;
          }
          this.attachXdp(p, name, ifname);
        } else if (way === 'tc') {
          if (opts.tc === undefined) {
            skipped.push(name);
            continue;
          }
          this.attachTc(p, name, opts.tc);
        } else if (way === 'perf_event') {
          // The config's event; else the one a perf_event/... section names.
          const event = opts.perfEvent ?? this.sectionEvents.get(name);
          if (event === undefined) {
            skipped.push(name);
            continue;
          }
          this.attachPerfEvent(p, name, event);
        } else if (way === 'none') {
          skipped.push(name);
          continue;
        } else {
          if (section.startsWith('tp/') || section.startsWith('tracepoint/')) ensureTracefs();
          const link = native.programAttach(p);
          if (link === null) {
            const errno = lastErrno() || Errno.EINVAL;
            throw new BpfError(`attach program ${name} (section ${section})`, errno, { object: this.path, detail: attachHint(section, errno) });
          }
          this.attachments.push({ program: name, undo: () => native.linkDestroy(link) });
        }
        attached.push(name);
      }
    } catch (e) {
      this.undo(before);
      throw e;
    }
    return { attached, skipped };
  }

  private attachXdp(p: unknown, name: string, ifname: string): void {
    const ifindex = interfaceIndex(ifname, `attach XDP program ${name} to interface ${ifname}`, this.path);
    // No mode flags: the kernel takes native (driver) mode when the driver implements XDP, else generic (skb).
    const link = native.programAttachXdp(p, ifindex);
    if (link === null) {
      const errno = lastErrno() || Errno.EINVAL;
      // The kernel refuses a second XDP program (or link) in the same mode on an interface.
      const detail = errno === Errno.EBUSY ? `interface ${ifname} already has an XDP program; see ip link show ${ifname}` : undefined;
      throw new BpfError(`attach XDP program ${name} to interface ${ifname}`, errno, { object: this.path, detail });
    }
    this.attachments.push({ program: name, undo: () => native.linkDestroy(link) });
  }

  private attachTc(p: unknown, name: string, tc: TcSpec): void {
    const op = `attach tc program ${name} to interface ${tc.interface} ${tc.direction}`;
    const ifindex = interfaceIndex(tc.interface, op, this.path);
    // One hook per interface in the process; the qdisc goes with the last of our filters, if it was ours.
    const h = TcHook.open(tc.interface, ifindex, this.path);
    let detach: () => void;
    try {
      detach = h.attach(native.programFd(p), tc.direction, name, this.path);
    } catch (e) {
      h.release();
      throw e;
    }
    this.attachments.push({
      program: name,
      undo: () => {
        detach();
        h.release();
      },
    });
  }

  /** The event a perf_event program's section names (ebpf_exporter's convention), if it does. */
  sectionEvent(program: string): RawPerfEventSpec | undefined {
    return this.sectionEvents.get(program);
  }

  private attachPerfEvent(p: unknown, name: string, spec: AnyPerfEventSpec): void {
    for (const cpu of onlineCpus()) {
      const op = `attach perf_event program ${name} to ${describePerfEvent(spec)} on CPU ${cpu}`;
      const pfd = openPerfEvent(spec, cpu, op, this.path);
      const link = native.programAttachPerfEvent(p, pfd);
      if (link === null) {
        const errno = lastErrno() || Errno.EINVAL;
        // No link took the event: it is still ours to close.
        closePerfEvent(pfd);
        throw new BpfError(op, errno, { object: this.path });
      }
      // The link owns the event fd: destroying it disables the event and closes the fd.
      this.attachments.push({ program: name, undo: () => native.linkDestroy(link) });
    }
  }

  /** Undo attachments from index `from` on, newest first. */
  private undo(from: number): void {
    const gone = this.attachments.splice(from);
    for (let i = gone.length - 1; i >= 0; i--) gone[i].undo();
  }

  /** Names of the programs attached now (a perf_event program once, whatever its CPUs). */
  attachedPrograms(): Set<string> {
    return new Set(this.attachments.map((a) => a.program));
  }

  /** Detach every program this object attached. */
  detach(): void {
    this.undo(0);
  }

  close(): void {
    if (this.handle === null) return;
    this.detach();
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
    native.objectClose(this.handle);
    this.handle = null;
  }
}

const VERIFIER_TAIL = 30;

/**
 * What to show of a failed load: libbpf's messages, with a verifier log cut to its last lines (the
 * instruction that failed and the reason are at the end; a whole log can be thousands of lines).
 */
function verifierExcerpt(output: readonly string[]): string | undefined {
  const lines = output.flatMap((m) => m.split('\n')).filter((l) => l.trim() !== '');
  if (lines.length === 0) return undefined;
  const shown = lines.length > VERIFIER_TAIL ? [`... ${lines.length - VERIFIER_TAIL} earlier lines of libbpf's output cut ...`, ...lines.slice(-VERIFIER_TAIL)] : lines;
  return `libbpf said:\n  ${shown.join('\n  ')}`;
}

const TRACING_SECTION = /^(fentry|fexit|fmod_ret|tp_btf|lsm|iter)(\.s)?[/+]/;

/**
 * What a failed load means beyond libbpf's words, when libbpf names the program that failed: a
 * kernel that refuses tracing programs even to root says EPERM, which libbpf reads as a memlock limit.
 */
/**
 * libbpf's open of `path`: its ELF read and its externs resolved. `quiet`: libbpf's messages are not
 * logged (the caller only inspects). The error says why not: no such file, not a regular file, an
 * extern nothing defines, or what libbpf said.
 */
function openObjectFile(path: string, quiet: boolean): unknown {
  // libbpf reads the file whole: a FIFO would block the process forever, a device read without end.
  const st = statSync(path, { throwIfNoEntry: false });
  if (st !== undefined && !st.isFile()) {
    throw new BpfError('open BPF object', Errno.EINVAL, { object: path, detail: `it is ${st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : 'not a regular file'}, not a compiled object (.bpf.o)` });
  }
  const { result: handle, output } = captureLibbpfOutput(() => native.objectOpenFile(path, null), { quiet });
  if (handle !== null) return handle;
  const errno = lastErrno() || Errno.EINVAL;
  // ENOENT is also what libbpf says of an extern it cannot resolve: the errno alone would say "no such map or pin".
  const extern = output.map((l) => /failed to find BTF for extern '([^']+)'/.exec(l)?.[1]).find((x) => x !== undefined);
  const detail =
    st === undefined
      ? 'no such file'
      : extern !== undefined
        ? `the object needs ${extern}, which neither the kernel nor the object defines: a kfunc or ksym this kernel lacks, or a libc function clang left as a call (__builtin_memcmp, memcpy or memset it did not inline)`
        : verifierExcerpt(output);
  throw new BpfError('open BPF object', errno, { object: path, detail });
}

function loadHint(errno: number, output: readonly string[], sections: ReadonlyMap<string, string>): string | undefined {
  const failed = output.map((l) => /prog '([^']+)': BPF program load failed/.exec(l)?.[1]).find((x) => x !== undefined);
  const section = failed === undefined ? undefined : sections.get(failed);
  if (failed === undefined || section === undefined) return undefined;
  if (errno === Errno.EPERM && TRACING_SECTION.test(section)) {
    const kind = /^[a-z_]+/.exec(section)?.[0] ?? section;
    // Which tracing kinds a kernel refuses varies (one measured here refuses fentry and fexit and loads tp_btf).
    return `the kernel refused program ${failed} (section ${section}): a kernel that does not allow ${kind} programs says EPERM even to root; \`bpftool feature probe kernel | grep tracing\` tells which tracing programs it allows`;
  }
  return undefined;
}

/** What a failed attach by section means, for the sections whose errno alone misleads. */
function attachHint(section: string, errno: number): string | undefined {
  const kind = /^[a-z_.]+/.exec(section)?.[0] ?? '';
  if (kind === 'usdt' || /^u(ret)?probe(\.s)?$/.test(kind)) {
    // Whatever libbpf says of it (EBADF, ESRCH, LIBBPF_ERRNO__FORMAT), a file that is not ELF is the cause.
    const binary = section.slice(section.indexOf('/') + 1).split(':')[0];
    const file = notElf(binary);
    if (file !== undefined) {
      return `${file}${file === binary ? '' : ` (where ${binary} is found on PATH)`} is not an ELF file: a script or a wrapper (a pyenv shim, say) is not the program; name the real binary by its full path`;
    }
    // A path (their examples' ./tracing/demos/...) is looked for from the exporter's working directory.
    if (kind === 'usdt' && binary.includes('/') && statErrno(binary) !== 0) {
      return `no file ${binary}${binary.startsWith('/') ? '' : ` (a path relative to the exporter's working directory, ${process.cwd()})`}: the program whose USDT probes the section names`;
    }
  }
  if ((kind === 'kprobe' || kind === 'kretprobe') && errno === Errno.ENOENT) {
    const target = section.slice(section.indexOf('/') + 1);
    return haveKprobes()
      ? `no kernel function ${target} to probe; /proc/kallsyms lists them`
      : 'this kernel has no kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs (built without CONFIG_KPROBES)';
  }
  if ((kind === 'uprobe' || kind === 'uretprobe') && errno === Errno.ENOENT) return 'the binary or its function named in the section was not found';
  if ((kind === 'tp' || kind === 'tracepoint') && errno === Errno.ENOENT) return `no tracepoint ${section.slice(section.indexOf('/') + 1)}; ${TRACEFS}/available_events lists them`;
  if (RAW_TP_KINDS.has(kind) && errno === Errno.ENOENT) {
    return `no raw tracepoint ${section.slice(section.indexOf('/') + 1)} in this kernel or its loaded modules (their BTF, ${BTF_DIR}, names each as btf_trace_NAME)`;
  }
  return undefined;
}

/** libbpf tries the kprobe PMU, then tracefs' kprobe_events: a kernel without CONFIG_KPROBES has neither. */
function haveKprobes(): boolean {
  return existsSync('/sys/bus/event_source/devices/kprobe') || existsSync(`${TRACEFS}/kprobe_events`) || existsSync('/sys/kernel/debug/tracing/kprobe_events');
}

const RAW_TP_KINDS: ReadonlySet<string> = new Set(['raw_tp', 'raw_tracepoint', 'raw_tp.w', 'raw_tracepoint.w']);
const BTF_DIR = '/sys/kernel/btf';

/**
 * How attach() attaches a program: XDP, tc and perf_event programs where the source's option says,
 * others by their section, which must name a target (libbpf cannot attach `raw_tp`, `kprobe` or
 * `tracepoint` alone: those are skipped).
 */
function attachWay(section: string, type: number): 'xdp' | 'tc' | 'perf_event' | 'section' | 'none' {
  if (isXdpSection(section)) return 'xdp';
  if (type === BPF_PROG_TYPE_SCHED_CLS) return 'tc';
  if (type === BPF_PROG_TYPE_PERF_EVENT) return 'perf_event';
  return /[/:]/.test(section) ? 'section' : 'none';
}

/** XDP sections as libbpf names them: xdp, xdp.frags, xdp/cpumap, xdp/devmap... */
function isXdpSection(section: string): boolean {
  return section === 'xdp' || section.startsWith('xdp/') || section.startsWith('xdp.');
}

/** XDP programs meant for an interface; xdp/cpumap and xdp/devmap ones run from map entries instead. */
function isInterfaceXdpSection(section: string): boolean {
  return section === 'xdp' || section === 'xdp.frags' || sectionInterface(section) !== undefined;
}

/**
 * The interface of ebpf_exporter's section convention `xdp/IFNAME`; undefined for other sections,
 * and for xdp/cpumap and xdp/devmap, which libbpf reads as programs for those maps.
 */
export function sectionInterface(section: string): string | undefined {
  if (!section.startsWith('xdp/')) return undefined;
  const ifname = section.slice(4);
  return ifname === '' || ifname === 'cpumap' || ifname === 'devmap' ? undefined : ifname;
}

/**
 * The addresses /proc/kallsyms gives the kernel's own symbols of `wanted` (lines of three fields;
 * module symbols, with a fourth, are left out, as ebpf_exporter does; a name listed twice takes its
 * last address, as theirs).
 */
function kernelSymbolAddresses(wanted: readonly string[]): Map<string, bigint> {
  const want = new Set(wanted);
  const out = new Map<string, bigint>();
  for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
    const parts = line.split(' ');
    if (parts.length !== 3 || !want.has(parts[2])) continue;
    out.set(parts[2], BigInt(`0x${parts[0]}`));
  }
  return out;
}

/**
 * The index of interface `ifname` in the exporter's network namespace (sysfs shows that one), or a
 * BpfError of `op` (which names the interface).
 */
function interfaceIndex(ifname: string, op: string, path: string): number {
  // A name with a slash (or . and ..) would read another sysfs file; the kernel allows none of them.
  const valid = ifname !== '' && ifname !== '.' && ifname !== '..' && !ifname.includes('/');
  try {
    if (valid) return Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8').trim());
  } catch {
    // Reported below, as for an invalid name.
  }
  throw new BpfError(op, Errno.ENOENT, { object: path, detail: `no network interface named ${ifname} in this network namespace` });
}

const TRACEFS = '/sys/kernel/tracing';

/**
 * Tracepoints are found through tracefs. A fresh host may not have it mounted: mount it when we may
 * (root), or say exactly what is missing.
 */
export function ensureTracefs(): void {
  // stat, not access(2): access checks with the real uid and without capabilities, so a non-root
  // exporter holding CAP_DAC_READ_SEARCH would find root's 0700 tracefs "missing".
  const found = [`${TRACEFS}/events`, '/sys/kernel/debug/tracing/events'].map(statErrno);
  if (found.includes(0)) return;
  if (found[0] === Errno.EACCES) {
    throw new BpfError('attach a tracepoint', Errno.EACCES, { detail: `tracefs at ${TRACEFS} is not readable by this process (it is root's, mode 0700): run as uid 0 or with CAP_DAC_READ_SEARCH` });
  }
  try {
    execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { stdio: 'pipe' });
  } catch (e) {
    const why = (e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message;
    throw new BpfError('attach a tracepoint', Errno.ENOENT, { detail: `tracefs is not mounted at ${TRACEFS} and mounting it failed (${why}); run: mount -t tracefs tracefs ${TRACEFS}` });
  }
}

/** 0 when `path` can be stat'ed, else the errno (ENOENT, EACCES...). */
function statErrno(path: string): number {
  try {
    statSync(path);
    return 0;
  } catch (e) {
    return -((e as NodeJS.ErrnoException).errno ?? -Errno.ENOENT);
  }
}

/** How the registry attaches an object's programs; every option unset leaves those programs detached. */
export interface AttachOptions {
  /** The interface every XDP program of the object (sections xdp, xdp.frags, xdp/IFNAME) is attached to; unset, xdp/IFNAME ones go to IFNAME. */
  xdp?: string;
  /** The clsact hook every tc program of the object (sections tc, classifier) is attached to. */
  tc?: TcSpec;
  /** The event every perf_event program of the object samples, on every online CPU; unset, perf_event/... ones sample their section's. */
  perf_event?: PerfEventSpec;
  /** Kernel symbols written into the object's kaddr_* variables before it loads (LoadOptions). */
  kaddrs?: readonly string[];
}

/** Options as one comparable text (keys in a fixed order). */
function optionsKey(opts: AttachOptions): string {
  return JSON.stringify([opts.xdp ?? null, opts.tc === undefined ? null : [opts.tc.interface, opts.tc.direction], opts.perf_event === undefined ? null : [opts.perf_event.event, opts.perf_event.frequency ?? null, opts.perf_event.period ?? null]]);
}

/**
 * The BPF objects a running exporter has loaded, one per file however many jobs read its maps:
 * loaded and attached on first use, closed (programs detached) when no config names them any more.
 * The config makes every job naming an object agree on its attach options; when a reload changes
 * them, the object's programs are re-attached and its maps (and what they hold) kept.
 */
export class ObjectRegistry {
  /** `attached`: the options key the object is attached with, or null when its last attach failed (nothing is attached then). */
  private readonly objects = new Map<string, { obj: BpfObject; attached: string | null; loaded: string }>();

  /**
   * The loaded object of `path`, attached as `opts` say. When the attach fails (an interface that
   * does not exist yet, say), nothing stays attached and the error is thrown, but the object stays
   * loaded: the next call tries the attach again without loading and verifying the object anew.
   */
  get(path: string, opts: AttachOptions = {}): BpfObject {
    const key = optionsKey(opts);
    // What the object is loaded with: other kaddrs need another load (its maps start anew).
    const loaded = JSON.stringify(opts.kaddrs ?? []);
    let known = this.objects.get(path);
    if (known !== undefined && known.loaded !== loaded) {
      known.obj.close();
      this.objects.delete(path);
      known = undefined;
    }
    if (known?.attached === key) return known.obj;
    let obj: BpfObject;
    if (known === undefined) {
      obj = BpfObject.load(path, { kaddrs: opts.kaddrs });
    } else {
      obj = known.obj;
      obj.detach();
    }
    this.objects.set(path, { obj, attached: null, loaded });
    // attach() undoes its own work when it fails: never half attached.
    const { attached, skipped } = attachAs(obj, opts);
    this.objects.set(path, { obj, attached: key, loaded });
    // Skipped programs are no error (an object may carry programs for other uses), but say which.
    logger.info({ object: path, attached, skipped }, skipped.length === 0 ? 'attached every program of the object' : 'attached the object\'s programs; the skipped ones need an option the source does not give (xdp, tc, perf_event) or a target in their section');
    return obj;
  }

  /**
   * Every program of every object loaded: its section, its id, whether it is attached now, and the
   * kernel's run time and run count (0 while kernel.bpf_stats_enabled is off). Read from the
   * programs' own fds: no CAP_SYS_ADMIN needed.
   */
  programs(): { object: string; program: string; section: string; id: number; attached: boolean; runTimeNs: bigint; runCount: bigint; recursionMisses: bigint }[] {
    const out = [];
    for (const [path, { obj }] of this.objects) {
      const attached = obj.attachedPrograms();
      for (const p of obj.programs()) {
        const info = readProgramInfo(obj.programFd(p.name), `${path}:${p.name}`);
        out.push({ object: path, program: p.name, section: p.section, id: info.id, attached: attached.has(p.name), runTimeNs: info.runTimeNs, runCount: info.runCount, recursionMisses: info.recursionMisses });
      }
    }
    return out;
  }

  /** Close every object whose path is not in `keep` (after a reload). */
  retain(keep: ReadonlySet<string>): void {
    for (const [path, { obj }] of this.objects) {
      if (keep.has(path)) continue;
      obj.close();
      this.objects.delete(path);
    }
  }

  closeAll(): void {
    this.retain(new Set());
  }
}

/**
 * Attach every program of `obj`: its XDP programs (sections xdp and xdp.frags) to `opts.xdp`, its
 * tc programs to `opts.tc`, its perf_event programs to `opts.perf_event`. An option given for an
 * object without such programs is refused: the config probably names the wrong object. Interfaces
 * are looked up first, so that a missing one costs no attach and detach of the other programs.
 */
function attachAs(obj: BpfObject, opts: AttachOptions): { attached: string[]; skipped: string[] } {
  const { xdp, tc } = checkAttachOptions(obj, opts);
  lookUpInterfaces(obj, opts, xdp, tc);
  const ifname = opts.xdp;
  return obj.attach({ xdp: ifname === undefined ? undefined : Object.fromEntries(xdp.map((name) => [name, ifname])), tc: opts.tc, perfEvent: opts.perf_event });
}

/**
 * Refuse (ENOENT) an attach option given for an object without such programs: the config probably
 * names the wrong object. Used before attaching, and by `check` and `dump`, which load objects
 * without attaching them. Returns the names of the XDP and tc programs.
 */
export function checkAttachOptions(obj: BpfObject, opts: AttachOptions): { xdp: string[]; tc: string[] } {
  const programs = obj.programs();
  const xdp = programs.filter((p) => isInterfaceXdpSection(p.section)).map((p) => p.name);
  const tc = programs.filter((p) => p.type === BPF_PROG_TYPE_SCHED_CLS).map((p) => p.name);
  if (opts.xdp !== undefined && xdp.length === 0) {
    throw new BpfError(`attach XDP programs to interface ${opts.xdp}`, Errno.ENOENT, { object: obj.path, detail: 'the object has no program in an xdp section' });
  }
  if (opts.tc !== undefined && tc.length === 0) {
    const { interface: dev, direction } = opts.tc;
    throw new BpfError(`attach tc programs to interface ${dev} ${direction}`, Errno.ENOENT, { object: obj.path, detail: 'the object has no program in a tc or classifier section' });
  }
  if (opts.perf_event !== undefined && !programs.some((p) => p.type === BPF_PROG_TYPE_PERF_EVENT)) {
    throw new BpfError(`attach perf_event programs to ${describePerfEvent(opts.perf_event)}`, Errno.ENOENT, { object: obj.path, detail: 'the object has no program in a perf_event section' });
  }
  return { xdp, tc };
}

/** The interfaces `opts.xdp` and `opts.tc` name exist (ENOENT otherwise, as attaching says). */
function lookUpInterfaces(obj: BpfObject, opts: AttachOptions, xdp: readonly string[], tc: readonly string[]): void {
  if (opts.xdp !== undefined) interfaceIndex(opts.xdp, `attach XDP program ${xdp[0]} to interface ${opts.xdp}`, obj.path);
  if (opts.tc !== undefined) interfaceIndex(opts.tc.interface, `attach tc program ${tc[0]} to interface ${opts.tc.interface} ${opts.tc.direction}`, obj.path);
}

/**
 * What attaching `obj` as `opts` say would fail on now, found without attaching anything (for
 * `check`, which loads objects privately): the options against the object's programs, the
 * interfaces of `xdp` and `tc`, the event of `perf_event` (opened disabled on one CPU, closed at
 * once), and the target every other program's section names: a tracepoint in tracefs, a raw
 * tracepoint in the BTF of the kernel and its modules, a kernel function in /proc/kallsyms (and
 * kprobes in the kernel), a uprobe's binary given by path. Throws the BpfError the attach would
 * (ENOENT for a missing target), for the first program that would fail. What it cannot see passes:
 * tracefs not mounted (run mounts it), no BTF, a uprobe library found through libbpf's search path,
 * a function inside a uprobe's binary, a kernel function kprobes refuse.
 */
export function checkAttachTargets(obj: BpfObject, opts: AttachOptions): void {
  const { xdp, tc } = checkAttachOptions(obj, opts);
  lookUpInterfaces(obj, opts, xdp, tc);
  const programs = obj.programs();
  const cpu = onlineCpus()[0] ?? 0;
  for (const perf of programs.filter((p) => attachWay(p.section, p.type) === 'perf_event')) {
    // The config's event, else the section's (ebpf_exporter's convention), for each program.
    const event = opts.perf_event ?? obj.sectionEvent(perf.name);
    if (event === undefined) continue;
    closePerfEvent(openPerfEvent(event, cpu, `attach perf_event program ${perf.name} to ${describePerfEvent(event)} on CPU ${cpu}`, obj.path));
    if (opts.perf_event !== undefined) break;
  }
  if (opts.xdp === undefined) {
    for (const p of programs) {
      const ifname = sectionInterface(p.section);
      if (ifname !== undefined) interfaceIndex(ifname, `attach XDP program ${p.name} to interface ${ifname}`, obj.path);
    }
  }
  for (const p of programs) {
    if (attachWay(p.section, p.type) !== 'section' || !targetMissing(p.section)) continue;
    throw new BpfError(`attach program ${p.name} (section ${p.section})`, Errno.ENOENT, { object: obj.path, detail: attachHint(p.section, Errno.ENOENT) });
  }
}

/** The target a section names is certainly not there (see checkAttachTargets); false when unknown. */
function targetMissing(section: string): boolean {
  const slash = section.indexOf('/');
  if (slash < 0) return false;
  const kind = section.slice(0, slash);
  const target = section.slice(slash + 1);
  switch (kind) {
    case 'tp':
    case 'tracepoint':
      return tracepointMissing(target);
    case 'kprobe':
    case 'kretprobe':
      // libbpf's form: FUNC or FUNC+OFFSET.
      return !haveKprobes() || !kernelFunctionExists(target.replace(/\+.*$/, ''));
    case 'uprobe':
    case 'uretprobe':
    case 'uprobe.s':
    case 'uretprobe.s':
      return uprobeBinaryMissing(target);
    default:
      return RAW_TP_KINDS.has(kind) && rawTracepointMissing(target);
  }
}

/** `CATEGORY/NAME` has no folder under tracefs' events; false when tracefs cannot be read. */
function tracepointMissing(target: string): boolean {
  if (!/^[\w.-]+\/[\w.-]+$/.test(target) || target.includes('..')) return false;
  const events = [`${TRACEFS}/events`, '/sys/kernel/debug/tracing/events'].find((d) => statErrno(d) === 0);
  return events !== undefined && statErrno(`${events}/${target}`) === Errno.ENOENT;
}

/**
 * No BTF of the kernel or of a loaded module has `btf_trace_NAME`, the type the kernel defines for
 * every tracepoint a raw_tp program can attach to; false without the kernel's BTF.
 */
function rawTracepointMissing(name: string): boolean {
  let files: string[];
  try {
    files = readdirSync(BTF_DIR);
  } catch {
    return false;
  }
  if (!files.includes('vmlinux')) return false;
  const needle = Buffer.from(`\0btf_trace_${name}\0`);
  for (const f of files) {
    try {
      const strings = btfStrings(readFileSync(`${BTF_DIR}/${f}`));
      if (strings === undefined || strings.includes(needle)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** The string section of raw BTF (struct btf_header: magic, version, flags, hdr_len, type_off, type_len, str_off, str_len). */
function btfStrings(btf: Buffer): Buffer | undefined {
  if (btf.length < 24) return undefined;
  const le = btf.readUInt16LE(0) === 0xeb9f;
  if (!le && btf.readUInt16BE(0) !== 0xeb9f) return undefined;
  const u32 = (at: number) => (le ? btf.readUInt32LE(at) : btf.readUInt32BE(at));
  const start = u32(4) + u32(16);
  return btf.subarray(start, start + u32(20));
}

/** /proc/kallsyms lists a text symbol `name` (of the kernel or a loaded module). */
export function kernelFunctionExists(name: string): boolean {
  if (!/^[\w.]+$/.test(name)) return true;
  let text: string;
  try {
    text = readFileSync('/proc/kallsyms', 'utf8');
  } catch {
    return true;
  }
  return new RegExp(`^[0-9a-f]+ [tTwW] ${name.replace(/\./g, '\\.')}(?:\t|$)`, 'm').test(text);
}

/**
 * The file a uprobe or usdt section's binary names, when it exists and is not an ELF file; found
 * as libbpf finds it, on PATH when the name has no slash.
 */
function notElf(binary: string): string | undefined {
  const candidates = binary.includes('/') ? [binary] : (process.env.PATH ?? '').split(':').filter((d) => d !== '').map((d) => `${d}/${binary}`);
  const file = candidates.find((f) => statErrno(f) === 0);
  if (file === undefined) return undefined;
  try {
    const fd = openSync(file, 'r');
    try {
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\x7fELF' ? undefined : file;
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined; // unreadable here: libbpf's own error stands
  }
}

/** A uprobe section's binary, given by path, is not a file (`uprobe/PATH:FUNC`); a bare library name libbpf searches for passes. */
function uprobeBinaryMissing(target: string): boolean {
  const colon = target.indexOf(':');
  const binary = colon < 0 ? target : target.slice(0, colon);
  if (!binary.includes('/')) return false;
  return statErrno(binary) === Errno.ENOENT;
}
