import { native, lastErrno } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { BpfMap } from './map.js';

const BPF_F_TEST_RUN_ON_CPU = 1;

/**
 * A compiled BPF object (ELF) opened and loaded by libbpf. Its maps and programs belong to it:
 * BpfMaps handed out borrow the object's fds and are closed with it.
 */
export class BpfObject {
  readonly path: string;
  private handle: unknown;
  private readonly maps = new Map<string, BpfMap>();

  private constructor(path: string, handle: unknown) {
    this.path = path;
    this.handle = handle;
  }

  /** Open and load `path` (maps created, programs verified). libbpf's messages go to the logger. */
  static load(path: string): BpfObject {
    const handle = native.objectOpenFile(path, null);
    if (handle === null) throw new BpfError('open BPF object', lastErrno() || Errno.EINVAL, { map: path });
    const obj = new BpfObject(path, handle);
    const ret = native.objectLoad(handle);
    if (ret < 0) {
      obj.close();
      throw new BpfError('load BPF object', -ret, { map: path });
    }
    return obj;
  }

  private get ptr(): unknown {
    if (this.handle === null) throw new BpfError('use BPF object', Errno.EBADF, { map: this.path, detail: 'the object was closed' });
    return this.handle;
  }

  /** The map called `name` in the object. */
  map(name: string): BpfMap {
    let m = this.maps.get(name);
    if (m === undefined) {
      const p = native.objectFindMapByName(this.ptr, name);
      if (p === null) throw new BpfError('find map', Errno.ENOENT, { map: `${this.path}:${name}`, detail: 'the object has no map of that name' });
      m = BpfMap.fromFd(native.mapFd(p), { owned: false, label: `${this.path}:${name}` });
      this.maps.set(name, m);
    }
    return m;
  }

  /** The fd of the program called `name`. */
  programFd(name: string): number {
    const p = native.objectFindProgramByName(this.ptr, name);
    if (p === null) throw new BpfError('find program', Errno.ENOENT, { map: `${this.path}:${name}`, detail: 'the object has no program of that name' });
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
    if (ret < 0) throw new BpfError(`test run of ${program}`, -ret, { map: this.path });
    return o.readUInt32LE(56);
  }

  close(): void {
    if (this.handle === null) return;
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
    native.objectClose(this.handle);
    this.handle = null;
  }
}
