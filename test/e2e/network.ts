/**
 * Networks the end-to-end tests own: a namespace and a veth pair (one end in it) with addresses from
 * 10.200.X.0/24 on them alone, set up and torn down by the test itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';
import { kernelDescribe } from '../kernel/support.js';

// ip, ping and tc are not part of a minimal Debian: iproute2 and iputils-ping provide them.
const TOOLS: [string, string, string[]][] = [['ip', 'iproute2', ['-V']], ['ping', 'iputils-ping', ['-V']], ['tc', 'iproute2', ['-V']]];
const missingTools = TOOLS.filter(([tool, , args]) => spawnSync(tool, args, { stdio: 'ignore' }).error !== undefined);

/** kernelDescribe, and like it: without ip, ping or tc a failure under REQUIRE_BPF=1 (CI), else a loud skip. */
export function networkDescribe(name: string, fn: () => void): void {
  if (missingTools.length === 0) {
    kernelDescribe(name, fn);
    return;
  }
  const what = missingTools.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(' and ');
  if (process.env.REQUIRE_BPF === '1') {
    describe(name, () => {
      it('has ip, ping and tc (REQUIRE_BPF=1)', () => {
        throw new Error(`the test needs ${what}, not found on PATH; install with: apt-get install ${[...new Set(missingTools.map(([, pkg]) => pkg))].join(' ')}`);
      });
    });
  } else {
    console.warn(`SKIPPING "${name}": ${what} not found on PATH; set REQUIRE_BPF=1 to fail instead`);
    describe.skip(name, fn);
  }
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: 'pipe' }).toString();
}

/** Run, ignoring failure: for cleanup of what may not exist. */
export function tryIp(...args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

export function programs(): { id: number; name?: string; map_ids?: number[] }[] {
  return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string; map_ids?: number[] }[];
}

/** 10.200.X.0/24 with X picked from the pid (plus `salt`), moved on past any subnet this host already has addresses in. */
export function freeSubnet(salt = 0): number {
  const used = new Set(
    (JSON.parse(ip('-j', '-4', 'addr', 'show')) as { addr_info?: { local: string }[] }[])
      .flatMap((l) => l.addr_info ?? [])
      .map((a) => /^10\.200\.(\d+)\./.exec(a.local)?.[1])
      .filter((x) => x !== undefined)
      .map(Number),
  );
  for (let i = 0; i < 254; i++) {
    const x = ((process.pid + salt + i) % 254) + 1;
    if (!used.has(x)) return x;
  }
  throw new Error('every 10.200.X.0/24 subnet has an address on this host');
}

export interface Veth {
  ns: string;
  host: string;
  peer: string;
  hostAddr: string;
  peerAddr: string;
}

/**
 * A namespace `ns` and a veth pair: `host` in this namespace, `peer` inside `ns`, both up with
 * addresses of a free subnet. The peer is created inside the namespace: no moment where both ends
 * are on the host.
 */
export function vethPair(ns: string, host: string, peer: string, salt = 0): Veth {
  const subnet = freeSubnet(salt);
  const hostAddr = `10.200.${subnet}.1`;
  const peerAddr = `10.200.${subnet}.2`;
  if (!ip('netns', 'list').split('\n').some((l) => l.split(' ')[0] === ns)) ip('netns', 'add', ns);
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns);
  ip('addr', 'add', `${hostAddr}/24`, 'dev', host);
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'addr', 'add', `${peerAddr}/24`, 'dev', peer);
  ip('-n', ns, 'link', 'set', peer, 'up');
  return { ns, host, peer, hostAddr, peerAddr };
}

/**
 * Exactly `n` echo requests from `ns` (or from this namespace when `ns` is undefined) to `to`,
 * 10 ms apart, each answer waited for 1 s at most; bounded by a 30 s timeout. Returns how many were
 * transmitted, as ping says.
 */
export function ping(ns: string | undefined, to: string, n: number): { transmitted: number; output: string } {
  const args = ['ping', '-c', String(n), '-i', '0.01', '-W', '1', '-q', to];
  const r = ns === undefined ? spawnSync(args[0], args.slice(1), { timeout: 30_000 }) : spawnSync('ip', ['netns', 'exec', ns, ...args], { timeout: 30_000 });
  const output = `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`;
  return { transmitted: Number(/(\d+) packets transmitted/.exec(output)?.[1] ?? -1), output };
}
