import { readdir } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { logger } from '../log.js';

/** The fewest connections the server takes, however few file descriptors are left. */
export const MIN_CONNECTIONS = 16;
/**
 * The most it takes by default: a few scrapers and probes need a handful, and an idle connection
 * costs memory too (~6 KB each over plain HTTP, measured), which a flood must not turn into an OOM kill.
 */
export const MAX_CONNECTIONS = 1024;
/** What is assumed when /proc/self/limits cannot be read: the usual soft limit. */
const DEFAULT_FD_LIMIT = 1024;
/** How often the descriptors the daemon holds are counted again (objects loaded, reloads). */
const REMEASURE_MS = 5_000;
/** The least change in the derived cap that is applied. */
const CAP_HYSTERESIS = 8;
/** At most one log line per this long about connections closed or refused at the cap. */
const LOG_EVERY_MS = 60_000;

/** The soft limit on open files (RLIMIT_NOFILE) from a /proc/PID/limits text; undefined when absent. */
export function fdSoftLimit(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  if (m === null) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** This process's soft limit on open files (Node raises it to the hard limit at start). */
export function processFdLimit(): number {
  try {
    return fdSoftLimit(readFileSync('/proc/self/limits', 'utf8')) ?? DEFAULT_FD_LIMIT;
  } catch {
    return DEFAULT_FD_LIMIT;
  }
}

/** How many descriptors this process has open now; undefined without /proc. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/**
 * How many connections the server keeps open: half of the file descriptors the daemon does not
 * already hold, the other half left for what it opens later (the inventory's and reloads' maps, BPF
 * objects, the state file, OTLP sockets, certificate files), between MIN_CONNECTIONS and MAX_CONNECTIONS.
 */
export function connectionCap(fdLimit: number, daemonFds: number): number {
  const half = Math.floor((fdLimit - daemonFds) / 2);
  return Math.max(MIN_CONNECTIONS, Math.min(MAX_CONNECTIONS, half));
}

interface Conn {
  /** Requests (or HTTP/2 streams) being answered on it. */
  busy: number;
  /** It has been answered a request: a keep-alive connection a client may send its next one on. */
  served: boolean;
  /** The remote address, and the connections from it (this one among them), least recently used first. */
  address: string;
  peer: Map<Socket, Conn>;
}

/**
 * The server's open connections, least recently used first, kept under a cap. A connection that
 * goes over the cap makes room for itself by closing one with no request in progress: from the
 * remote address that holds the most connections when it holds more than one (a flood from one
 * place cannot push out the probes and scrapers that come from others), else from all; of those,
 * the least recently used one that never sent a request, or else the least recently used idle
 * keep-alive one. So a flood of idle connections holds at most `cap` descriptors, and a client that
 * sends its request (a probe, a scrape) is served instead of waiting for them to time out. When every
 * connection is answering a request, one more is let in, and those after it are refused by Node at
 * accept (`server.maxConnections`) until a request is done.
 */
export class ConnectionLimiter {
  private readonly conns = new Map<Socket, Conn>();
  /** The connections by remote address. */
  private readonly peers = new Map<string, Map<Socket, Conn>>();
  private capValue: number;
  private readonly fixed: boolean;
  private readonly fdLimit: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = 0;
  private refused = 0;
  private lastLog = -Infinity;
  private readonly server: { maxConnections: number };

  private readonly share: number;

  /**
   * `fixed`: a cap given by the user (--web.max-connections); otherwise derived from the fd limit and
   * split between the `share` servers that listen side by side (one per --web.listen-address).
   */
  constructor(server: { maxConnections: number }, opts: { fixed?: number; fdLimit?: number; share?: number } = {}) {
    this.server = server;
    this.fixed = opts.fixed !== undefined;
    this.fdLimit = opts.fdLimit ?? processFdLimit();
    this.share = Math.max(1, opts.share ?? 1);
    this.capValue = opts.fixed ?? this.derived(openFds() ?? 0);
    this.apply();
  }

  /** This server's part of the cap connectionCap gives for `daemonFds` held. */
  private derived(daemonFds: number): number {
    return Math.max(MIN_CONNECTIONS, Math.floor(connectionCap(this.fdLimit, daemonFds) / this.share));
  }

  get cap(): number {
    return this.capValue;
  }

  get size(): number {
    return this.conns.size;
  }

  /**
   * Count the descriptors the daemon holds (all open ones but the connections) every few seconds
   * while the server listens, and derive the cap from them: BPF objects are loaded by the first
   * cycles, and reloads load and close more.
   */
  start(): void {
    if (this.fixed || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.measure(), REMEASURE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async measure(): Promise<void> {
    let open: number;
    try {
      open = (await readdir('/proc/self/fd')).length;
    } catch {
      return;
    }
    const next = this.derived(Math.max(0, open - this.conns.size));
    // The count moves by a few with connections closing as it is taken: only a real change (BPF
    // objects loaded or closed) moves the cap.
    if (Math.abs(next - this.capValue) < CAP_HYSTERESIS) return;
    logger.debug({ maxConnections: next, fdLimit: this.fdLimit, open }, 'connection cap changed');
    this.capValue = next;
    this.apply();
    // A lower cap: back under it now (Node would refuse every new connection while over it).
    this.trim(undefined);
  }

  private apply(): void {
    // Node refuses a connection at accept once this many are open: the cap, plus the one that came
    // while every other connection was answering a request (nothing idle to close for it).
    this.server.maxConnections = this.capValue + 1;
  }

  /** A new connection (the raw TCP socket, before TLS). */
  add(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    let peer = this.peers.get(address);
    if (peer === undefined) this.peers.set(address, (peer = new Map()));
    const conn: Conn = { busy: 0, served: false, address, peer };
    this.conns.set(socket, conn);
    peer.set(socket, conn);
    socket.once('close', () => this.forget(socket));
    this.trim(socket);
  }

  private forget(socket: Socket): void {
    const conn = this.conns.get(socket);
    if (conn === undefined) return;
    this.conns.delete(socket);
    conn.peer.delete(socket);
    if (conn.peer.size === 0 && this.peers.get(conn.address) === conn.peer) this.peers.delete(conn.address);
  }

  /**
   * Back under the cap: close the least recently used idle connections, never `keep` (the one just
   * made: it has had no chance to send its request). Their descriptors are closed at once
   * (destroy() closes the handle).
   */
  private trim(keep: Socket | undefined): void {
    let closed = 0;
    while (this.conns.size > this.capValue) {
      const victim = this.victim(keep);
      if (victim === undefined) break;
      this.forget(victim);
      victim.destroy();
      closed++;
    }
    this.closed += closed;
    if (closed > 0 || this.conns.size > this.capValue) this.note();
  }

  /** A connection Node refused at accept because every place was answering a request. */
  dropped(): void {
    this.refused++;
    this.note();
  }

  /** A request (or HTTP/2 stream) starts on `socket`: the raw socket, or a TLS socket over one. */
  begin(socket: Socket | undefined): (() => void) | undefined {
    const raw = this.rawOf(socket);
    if (raw === undefined) return undefined;
    const conn = this.conns.get(raw)!;
    conn.busy++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      conn.busy--;
      conn.served = true;
      // Most recently used now: moved to the end of the order.
      if (this.conns.delete(raw)) {
        this.conns.set(raw, conn);
        conn.peer.delete(raw);
        conn.peer.set(raw, conn);
      }
      // Over the cap by the one that came while all were busy: an idle place is free again.
      this.trim(undefined);
    };
  }

  /** Close every connection. */
  closeAll(): void {
    for (const s of this.conns.keys()) s.destroy();
    this.conns.clear();
    this.peers.clear();
  }

  private rawOf(socket: Socket | undefined): Socket | undefined {
    if (socket === undefined || socket === null) return undefined;
    if (this.conns.has(socket)) return socket;
    // A TLS socket keeps the TCP socket it was made over as _parent (HTTP/2's socket proxy passes it on).
    const parent = (socket as Socket & { _parent?: Socket })._parent;
    return parent !== undefined && this.conns.has(parent) ? parent : undefined;
  }

  /** The connection to close first (see the class), never `keep`; undefined when every other one is busy. */
  private victim(keep: Socket | undefined): Socket | undefined {
    let biggest: Map<Socket, Conn> | undefined;
    for (const peer of this.peers.values()) if (biggest === undefined || peer.size > biggest.size) biggest = peer;
    if (biggest !== undefined && biggest.size > 1) {
      const v = leastRecentlyUsedIdle(biggest, keep);
      if (v !== undefined) return v;
    }
    return leastRecentlyUsedIdle(this.conns, keep);
  }

  /** One warning a minute at most, with the counts since the last one: never a line per connection. */
  private note(): void {
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.lastLog = now;
    logger.warn(
      // Counts since the last such line.
      { maxConnections: this.capValue, closedIdle: this.closed, refused: this.refused },
      'connection cap reached: the least recently used idle connections are closed to make room (logged at most once a minute)',
    );
    this.closed = 0;
    this.refused = 0;
  }
}

/**
 * Of `conns` (least recently used first), the first that never sent a request, or else the first idle
 * keep-alive one: a scraper's keep-alive connection is kept through a flood of connections that send
 * nothing (closed under it, its next request would fail as the client sends it: many clients do not
 * retry).
 */
function leastRecentlyUsedIdle(conns: Map<Socket, Conn>, keep: Socket | undefined): Socket | undefined {
  let keepAlive: Socket | undefined;
  for (const [s, c] of conns) {
    if (c.busy > 0 || s === keep) continue;
    if (!c.served) return s;
    keepAlive ??= s;
  }
  return keepAlive;
}
