/**
 * tc (cls_bpf) attachment through libbpf's bpf_tc_* calls: a clsact qdisc on the interface (the
 * "hook"), then one direct-action filter per program at the ingress or egress of it. What we add
 * is removed by exactly what we remember: the filters by handle and priority, the qdisc only when
 * we created it.
 */
import { captureLibbpfOutput, native } from './libbpf.js';
import { BPF_TC_EGRESS, BPF_TC_INGRESS, tcHook, tcOpts, tcOptsResult } from './tc-structs.js';
import { BpfError, Errno } from './errors.js';
import { logger } from '../log.js';

export type TcDirection = 'ingress' | 'egress';

/** Where a tc source attaches its programs. */
export interface TcSpec {
  interface: string;
  direction: TcDirection;
}

/**
 * The clsact hooks this process has filters on, by ifindex: shared by every object, so that the
 * qdisc we created goes with the last of our filters on it, whichever object added them.
 */
const hooks = new Map<number, TcHook>();

/** A clsact qdisc on an interface: made by us (and so removed by us) or found there. */
export class TcHook {
  readonly ifname: string;
  readonly ifindex: number;
  readonly created: boolean;
  private filters = 0;

  private constructor(ifname: string, ifindex: number, created: boolean) {
    this.ifname = ifname;
    this.ifindex = ifindex;
    this.created = created;
  }

  /**
   * The clsact qdisc of `ifindex`: the one this process holds already, else created unless the
   * interface has one (EEXIST: someone else's, left alone). Call release() after the last detach.
   */
  static open(ifname: string, ifindex: number, path: string): TcHook {
    const known = hooks.get(ifindex);
    if (known !== undefined) return known;
    const hook = TcHook.create(ifname, ifindex, path);
    hooks.set(ifindex, hook);
    return hook;
  }

  private static create(ifname: string, ifindex: number, path: string): TcHook {
    // libbpf warns about the kernel's refusal of an exclusive create, which is expected when the qdisc exists.
    const { result: ret, output } = captureLibbpfOutput(() => native.tcHookCreate(tcHook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)), { quiet: true });
    if (ret === 0) return new TcHook(ifname, ifindex, true);
    if (-ret === Errno.EEXIST) {
      logger.debug({ source: 'tc', interface: ifname }, 'the interface has a clsact qdisc already: adding filters to it, and leaving it in place');
      return new TcHook(ifname, ifindex, false);
    }
    const said = output.map((l) => l.replace(/^libbpf: /, '').trim()).filter((l) => l !== '').join('; ');
    const detail = ret === -Errno.EPERM ? 'changing qdiscs needs CAP_NET_ADMIN' : said === '' ? undefined : `libbpf said: ${said}`;
    throw new BpfError(`create the clsact qdisc of interface ${ifname}`, -ret, { object: path, detail });
  }

  /**
   * Attach `progFd` as a direct-action filter at `direction`; the kernel picks a free handle and
   * priority, which the returned function uses to remove exactly this filter.
   */
  attach(progFd: number, direction: TcDirection, program: string, path: string): () => void {
    const point = direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS;
    const hook = tcHook(this.ifindex, point);
    const opts = tcOpts({ progFd });
    const { result: ret, output } = captureLibbpfOutput(() => native.tcAttach(hook, opts));
    if (ret < 0) {
      const said = output.map((l) => l.replace(/^libbpf: /, '').trim()).filter((l) => l !== '').join('; ');
      const detail =
        ret === -Errno.EEXIST
          ? `a filter with the same handle and priority is already at ${direction} of ${this.ifname}; see tc filter show dev ${this.ifname} ${direction}`
          : ret === -Errno.EPERM
            ? 'adding tc filters needs CAP_NET_ADMIN'
            : said === '' ? undefined : `libbpf said: ${said}`;
      throw new BpfError(`attach tc program ${program} to interface ${this.ifname} ${direction}`, -ret, { object: path, detail });
    }
    const { handle, priority } = tcOptsResult(opts);
    this.filters++;
    return () => {
      this.filters--;
      const r = native.tcDetach(hook, tcOpts({ handle, priority }));
      // ENOENT/ENODEV: the interface (and its filters) went away before us; nothing is left to remove.
      if (r < 0) logger.debug({ source: 'tc', interface: this.ifname, direction, handle, priority, errno: -r }, 'tc filter already gone');
    };
  }

  /** Once no filter of this process is left on the hook: forget it, and remove the qdisc if we created it. */
  release(): void {
    if (this.filters > 0) return;
    if (hooks.get(this.ifindex) === this) hooks.delete(this.ifindex);
    if (!this.created) return;
    const r = native.tcHookDestroy(tcHook(this.ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS));
    if (r < 0) logger.debug({ source: 'tc', interface: this.ifname, errno: -r }, 'clsact qdisc already gone');
  }
}
