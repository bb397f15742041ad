import { BpfMap } from './map.js';
import { BpfObject, checkAttachOptions, checkAttachTargets, type ObjectRegistry } from './object.js';
import type { TcSpec } from './tc.js';
import type { PerfEventSpec } from './perf-event.js';

/** Where a map comes from, as a config names it; an object source also says where its XDP, tc and perf_event programs attach. */
export type MapSourceRef =
  | { pinned: string }
  | { id: number }
  | { name: string }
  | { object: string; map: string; xdp?: string; tc?: TcSpec; perf_event?: PerfEventSpec; kaddrs?: readonly string[] };

export interface OpenedMap {
  map: BpfMap;
  /** Closes the map, and the object it came from when the source loaded one. */
  close(): void;
}

/**
 * Open the map a source names: read-only unless `write` (drains). An object source takes the map
 * from the registry's loaded and attached object when one is given (the daemon; its XDP, tc and
 * perf_event programs where the source's `xdp`, `tc` and `perf_event` say), or loads the object
 * privately, without attaching anything, for as long as the map is open (check, dump). Either way,
 * an attach option for programs the object lacks fails (ENOENT). `checkTargets` (check): a private
 * load also fails as attaching would, when a program's target is missing (checkAttachTargets).
 */
export function openSource(source: MapSourceRef, opts: { write?: boolean; objects?: ObjectRegistry; checkTargets?: boolean } = {}): OpenedMap {
  if ('pinned' in source) return own(BpfMap.openPinned(source.pinned, opts));
  if ('id' in source) return own(BpfMap.openById(source.id, opts));
  if ('name' in source) return own(BpfMap.openByName(source.name, opts));
  if (opts.objects !== undefined) {
    // The registry owns the object and its maps: closing the job leaves them be.
    return { map: opts.objects.get(source.object, { xdp: source.xdp, tc: source.tc, perf_event: source.perf_event, kaddrs: source.kaddrs }).map(source.map), close: () => {} };
  }
  const obj = BpfObject.load(source.object, { kaddrs: source.kaddrs });
  try {
    // Nothing is attached here, but an option for programs the object lacks is wrong already (and,
    // for check, a target the attach would not find).
    const attach = { xdp: source.xdp, tc: source.tc, perf_event: source.perf_event };
    if (opts.checkTargets === true) checkAttachTargets(obj, attach);
    else checkAttachOptions(obj, attach);
    return { map: obj.map(source.map), close: () => obj.close() };
  } catch (e) {
    obj.close();
    throw e;
  }
}

function own(map: BpfMap): OpenedMap {
  return { map, close: () => map.close() };
}
