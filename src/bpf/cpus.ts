import { readFileSync } from 'node:fs';

/**
 * Parse a kernel CPU list such as "0-3,8,10-11" into ascending CPU ids.
 * Per-CPU map values carry one slot per *possible* CPU, in this order: slot i is the i-th id here,
 * which differs from the CPU number when the mask is sparse.
 */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new Error(`cannot parse CPU list ${JSON.stringify(text)} at ${JSON.stringify(part)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) cpus.push(c);
  }
  return cpus;
}

let possible: number[] | undefined;

/** Possible CPU ids, read once from /sys/devices/system/cpu/possible (what libbpf_num_possible_cpus counts). */
export function possibleCpus(): readonly number[] {
  possible ??= parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
  return possible;
}
