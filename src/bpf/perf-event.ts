/**
 * Perf events for `perf_event` programs: one sampling event per online CPU (every task on it, pid
 * -1), opened through perf_event_open(2) with the struct perf_event_attr of perf-event-attr.ts.
 */
import { readFileSync } from 'node:fs';
import { closeNativeFd, perfEventOpen } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { parseCpuList } from './cpus.js';
import { PERF_TYPE_HARDWARE, perfEventAttr, perfEventName, perfEventTypeConfig, type AnyPerfEventSpec } from './perf-event-attr.js';

export { PERF_EVENTS, parsePerfEventSection, type AnyPerfEventSpec, type PerfEventName, type PerfEventSpec, type RawPerfEventSpec } from './perf-event-attr.js';

/** Online CPU ids now (/sys/devices/system/cpu/online); a CPU brought online later is not sampled. */
export function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
}

/**
 * The event as the user wrote it, for messages: `cpu-clock at 99 Hz`, `cpu-cycles every 1000000
 * events`; one given by type and config (a section's) as `type=1,config=0 (cpu-clock) at 99 Hz`.
 */
export function describePerfEvent(spec: AnyPerfEventSpec): string {
  const how = spec.frequency !== undefined ? `at ${spec.frequency} Hz` : `every ${spec.period ?? 0} events`;
  return `${eventText(spec)} ${how}`;
}

function eventText(spec: AnyPerfEventSpec): string {
  if ('event' in spec) return spec.event;
  const name = perfEventName(spec.type, spec.config);
  return `type=${spec.type},config=${spec.config}${name === undefined ? '' : ` (${name})`}`;
}

const PERF_FLAG_FD_CLOEXEC = 8;

/**
 * Open `spec` on `cpu` for every task. Returns the fd; a failure is a BpfError of `op` whose detail
 * says what the errno means for perf events (a VM without hardware counters, a frequency above the
 * kernel's limit, perf_event_paranoid).
 */
export function openPerfEvent(spec: AnyPerfEventSpec, cpu: number, op: string, path: string): number {
  const fd = perfEventOpen(perfEventAttr(spec), -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd >= 0) return fd;
  throw new BpfError(op, -fd, { object: path, detail: perfEventHint(spec, -fd) });
}

export function closePerfEvent(fd: number): void {
  closeNativeFd(fd);
}

function perfEventHint(spec: AnyPerfEventSpec, errno: number): string | undefined {
  const [type] = perfEventTypeConfig(spec);
  const hardware = type === PERF_TYPE_HARDWARE;
  const event = eventText(spec);
  switch (errno) {
    case Errno.ENOENT:
      return hardware
        ? `no PMU of this machine counts ${event}: hardware events are often missing in a VM; a software event such as cpu-clock samples everywhere`
        : type === 1
          ? `the kernel does not know the software event ${event}`
          : `no PMU of this machine has the event ${event}`;
    case Errno.EOPNOTSUPP:
      return `the PMU counts ${event} but cannot sample it (no overflow interrupt, as in many VMs); a software event such as cpu-clock samples everywhere`;
    case Errno.EINVAL: {
      const limit = readNumber('/proc/sys/kernel/perf_event_max_sample_rate');
      if (spec.frequency !== undefined && limit !== undefined && spec.frequency > limit) {
        return `frequency ${spec.frequency} Hz is above kernel.perf_event_max_sample_rate (${limit})`;
      }
      return 'the kernel refused the event\'s attributes';
    }
    case Errno.EACCES:
    case Errno.EPERM: {
      const paranoid = readNumber('/proc/sys/kernel/perf_event_paranoid');
      return `sampling every task of a CPU needs CAP_PERFMON (or CAP_SYS_ADMIN)${paranoid === undefined ? '' : ` with kernel.perf_event_paranoid = ${paranoid}`}`;
    }
    case 38: // ENOSYS
      return `perf_event_open has no syscall number known to the exporter on ${process.arch}, or the kernel lacks perf events`;
    default:
      return undefined;
  }
}

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}
