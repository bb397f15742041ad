/**
 * The /metrics document, rendered once per change and served from memory (with its gzip form), so a
 * scrape never renders and never touches a map.
 *
 * What it holds: the latest families of every job (set() replaces a job's part, remove() drops it)
 * and a prom-client Registry for the exporter's self-metrics.
 *
 * How the cache is invalidated: a generation counter. set(), remove() and invalidate() bump it;
 * render() reuses the document of the current generation and builds a new one only when the
 * generation moved. The scheduler calls invalidate() after it updates the self-metrics of a cycle
 * (one cycle that set()s a job and then updates self-metrics may bump twice: still at most one
 * render per scrape). Self-metrics are read from the registry only while rendering, so between
 * bumps they are as fresh as the last set()/remove()/invalidate(): that is the point of the cache.
 *
 * Work per render is proportional to what changed: each job's text is kept per format and reused
 * until that job's next set(); only the changed jobs and the (small) registry are rendered again.
 * A job of a million series takes seconds to render: it is rendered in slices that yield to the
 * event loop, and a scrape that would wait more than FRESH_WAIT_MS for it gets the last complete
 * document instead (one cycle older), so /metrics always answers at once.
 */
import { createGzip } from 'node:zlib';
import { Registry } from 'prom-client';
import type { Family } from '../metric/series.js';
import { occupiedNames, type ExpositionFormat } from '../metric/names.js';
import { renderRegistry, registryMetricTypes } from './prometheus-registry.js';
import { TextWriter, writeFamily } from './prometheus-render.js';
import { nextTurn } from '../util/slices.js';

/**
 * One gzip stream over the document's parts (no copy of the whole text); asynchronous, so compressing
 * a large document on the libuv pool keeps the event loop answering.
 */
function gzipParts(parts: readonly Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = createGzip({ level: GZIP_LEVEL });
    const out: Buffer[] = [];
    z.on('data', (b: Buffer) => out.push(b));
    z.on('end', () => resolve(Buffer.concat(out)));
    z.on('error', reject);
    for (const p of parts) z.write(p);
    z.end();
  });
}

/**
 * gzip level 1: on the 8.4 MB document of 100,000 flow series it compresses in ~40 ms where the
 * default level 6 takes ~180 ms, for a body 18-40% larger (BENCHMARKS.md, "gzip level"); on loopback
 * or a cluster network the CPU saved is worth more than the bytes.
 */
export const GZIP_LEVEL = 1;

interface JobPart {
  families: readonly Family[];
  /** The exposition names this job occupies (see occupiedNames). */
  names: readonly string[];
  /** The job's lines per format, rendered on first need (shared by builds that overlap). */
  text?: Promise<Buffer>;
  openmetrics?: Promise<Buffer>;
  /** The length of the job's last render per format: the next one's buffer is allocated at once. */
  sizes: Partial<Record<ExpositionFormat, number>>;
}

interface Rendered {
  /** The document as the jobs' parts (shared with later generations while a job does not change) and the self-metrics. */
  document: Promise<readonly Buffer[]>;
  gzip?: Promise<Buffer>;
  /** The document in one Buffer, made when render() (rather than renderChunks()) asks for it. */
  joined?: Promise<Buffer>;
  /** Set when `document` has resolved. */
  done?: boolean;
  /** Set when `gzip` has resolved. */
  gzipDone?: boolean;
  /** The generation it was built for. */
  gen: number;
  format: ExpositionFormat;
}

/**
 * How long a scrape waits for a document still being built before it is served the previous one.
 * Small snapshots build well within it (10,000 series: ~3 ms), so scrapes see them at once; one of
 * 100,000 series takes ~30 ms and one of a million seconds, and then a scrape gets the last complete
 * document (one cycle older) without waiting. 15 ms made the first scrape after each snapshot of
 * 100,000 series the slowest of all (wait plus transfer, ~25 ms: BENCHMARKS.md).
 */
const FRESH_WAIT_MS = 5;

async function renderPart(part: JobPart, format: ExpositionFormat): Promise<Buffer> {
  const w = new TextWriter(Math.ceil((part.sizes[format] ?? 0) * 1.05));
  for (const f of part.families) {
    // A family of a million series renders in slices, so /metrics and health checks answer meanwhile.
    const slices = writeFamily(f, format, w);
    while (slices.next().done !== true) await nextTurn();
  }
  part.sizes[format] = w.pos;
  // Kept until the job's next snapshot: without the slack of a buffer that grew.
  return w.pos < w.buf.length * 0.9 ? Buffer.from(w.result()) : w.result();
}

/**
 * A document asked for in this long is built as soon as a new generation starts (after the snapshot
 * or self-metric update that started it), so the next scrape finds it ready; one nobody asked for in
 * this long is built only when asked.
 */
const WANTED_MS = 5 * 60_000;

/** How long after start the text document is built ahead though no scrape has asked for it yet. */
const FIRST_WANTED_MS = 60_000;

interface Owner {
  job: string;
  metric: string;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function clash(metric: string, job: string, name: string, other: string): Error {
  return new Error(`metric "${metric}" of job "${job}" clashes with ${other}: both expose "${name}"; a metric name may come from one place only`);
}

export class ExpositionCache {
  /** Where the exporter registers its self-metrics; rendered after the jobs' families. */
  readonly registry: Registry;
  private readonly jobs = new Map<string, JobPart>();
  /** Exposition name -> the job and metric that occupy it. */
  private readonly owners = new Map<string, Owner>();
  private gen = 0;
  private readonly rendered = new Map<ExpositionFormat, Rendered>();
  /** The last complete document per format, served while a newer one is still being built. */
  private readonly lastGood = new Map<ExpositionFormat, Rendered>();
  /** The last document per format whose gzip form is complete, served while a newer one compresses. */
  private readonly lastGoodGzip = new Map<ExpositionFormat, Rendered>();
  /** What scrapes asked for (format, gzip) and when last: built ahead of the next scrape. */
  private readonly wanted = new Map<string, { format: ExpositionFormat; gzip: boolean; at: number }>();
  private prebuilding = false;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    // For the first minute the text document, plain and gzipped, is built as if scrapes had asked for
    // it: the first scrape finds it ready (a million series take seconds to render and compress).
    const at = Date.now() - WANTED_MS + FIRST_WANTED_MS;
    for (const gzip of [false, true]) this.wanted.set(`text${gzip ? '+gzip' : ''}`, { format: 'text', gzip, at });
  }

  /**
   * Whether a complete text document can be served (readiness: a scrape then answers at once with
   * every job's series). Starts building one when none is under way.
   */
  hasDocument(): boolean {
    return this.lastGood.has('text') || this.entry('text').done === true;
  }

  /** Bumped by every set(), remove() and invalidate(); a rendered document belongs to one generation. */
  get generation(): number {
    return this.gen;
  }

  /**
   * Replaces `job`'s families with this cycle's snapshot. The arrays are kept, not copied: the
   * caller hands over an immutable snapshot and builds a new one next cycle.
   *
   * Throws, and keeps the job's previous families, when a family would share an exposition name with
   * another job's family, another family of this job, or a self-metric. Two jobs' families are
   * refused rather than merged: config rules already make metric names unique across the config, so
   * a clash is a mistake, and merging would need both jobs' label sets checked for duplicates.
   */
  set(job: string, families: readonly Family[]): void {
    const self = new Map<string, string>();
    for (const m of registryMetricTypes(this.registry)) for (const n of occupiedNames(m.name, m.type)) self.set(n, m.name);
    const claimed = new Map<string, string>();
    for (const f of families) {
      for (const name of occupiedNames(f.name, f.type)) {
        const sibling = claimed.get(name);
        if (sibling !== undefined) throw clash(f.name, job, name, `metric "${sibling}" of the same job`);
        const owner = this.owners.get(name);
        if (owner !== undefined && owner.job !== job) throw clash(f.name, job, name, `metric "${owner.metric}" of job "${owner.job}"`);
        const selfMetric = self.get(name);
        if (selfMetric !== undefined) throw clash(f.name, job, name, `the exporter's self-metric "${selfMetric}"`);
        claimed.set(name, f.name);
      }
    }
    const sizes = this.jobs.get(job)?.sizes ?? {};
    this.dropOwners(job);
    for (const [name, metric] of claimed) this.owners.set(name, { job, metric });
    this.jobs.set(job, { families, names: [...claimed.keys()], sizes });
    this.invalidate();
  }

  /** Forgets `job` (its map went away or the config dropped it). */
  remove(job: string): void {
    if (!this.jobs.has(job)) return;
    this.dropOwners(job);
    this.jobs.delete(job);
    this.invalidate();
  }

  /** Starts a new generation: the next render() reads the registry and rebuilds the document. */
  invalidate(): void {
    this.gen++;
    // Documents of older generations are never served again; in-flight requests keep their own reference.
    this.rendered.clear();
    this.schedulePrebuild();
  }

  /** After this turn of the event loop (a cycle may bump twice), build what scrapes lately asked for. */
  private schedulePrebuild(): void {
    if (this.prebuilding || this.wanted.size === 0) return;
    this.prebuilding = true;
    setImmediate(() => {
      this.prebuilding = false;
      const now = Date.now();
      for (const [key, w] of this.wanted) {
        if (now - w.at > WANTED_MS) {
          this.wanted.delete(key);
          continue;
        }
        const entry = this.entry(w.format);
        // A failure is reported to the scrape that asks next (render() rejects); nothing to do here.
        (w.gzip ? this.gzipOf(entry) : entry.document).catch(() => {});
      }
    }).unref();
  }

  /**
   * The document in `format` (gzipped when asked), built at most once per generation and format;
   * concurrent calls share one build. Its parts are kept until the generation changes: callers must
   * not modify what they get. Rejects when a self-metric's collect() fails or a self-metric
   * registered after set() clashes with a job's family; the next call tries again.
   */
  async render(format: ExpositionFormat, gzip: boolean): Promise<Buffer> {
    const entry = await this.current(format, gzip);
    if (gzip) return this.gzipOf(entry);
    return (entry.joined ??= entry.document.then((parts) => Buffer.concat(parts)));
  }

  /**
   * The document as render() gives it, in the parts it is kept in: what the server writes, so that a
   * scrape copies nothing. The same buffers are returned until the generation changes.
   */
  async renderChunks(format: ExpositionFormat, gzip: boolean): Promise<readonly Buffer[]> {
    const entry = await this.current(format, gzip);
    return gzip ? [await this.gzipOf(entry)] : entry.document;
  }

  /** The current generation's document, or the last complete one when the current one is late. */
  private async current(format: ExpositionFormat, gzip: boolean): Promise<Rendered> {
    this.wanted.set(`${format}${gzip ? '+gzip' : ''}`, { format, gzip, at: Date.now() });
    const entry = this.entry(format);
    // For gzip, ready means compressed too: a million series take a few hundred ms to compress.
    const ready = gzip ? entry.gzipDone === true : entry.done === true;
    const stale = (gzip ? this.lastGoodGzip : this.lastGood).get(format);
    if (ready || stale === undefined || stale === entry) return entry;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), FRESH_WAIT_MS)));
    const fresh = gzip ? this.gzipOf(entry) : entry.document;
    const first = await Promise.race([fresh.then(() => 'fresh' as const, () => 'fresh' as const), late]);
    clearTimeout(timer);
    return first === 'late' ? stale : entry;
  }

  /** The document of the current generation in `format`, its build started if it has not been. */
  private entry(format: ExpositionFormat): Rendered {
    let entry = this.rendered.get(format);
    if (entry === undefined) {
      const fresh: Rendered = { document: this.build(format), gen: this.gen, format };
      this.rendered.set(format, fresh);
      fresh.document.then(
        () => {
          fresh.done = true;
          if ((this.lastGood.get(format)?.gen ?? -1) < fresh.gen) this.lastGood.set(format, fresh);
        },
        () => this.forget(format, fresh),
      );
      entry = fresh;
    }
    return entry;
  }

  private gzipOf(entry: Rendered): Promise<Buffer> {
    if (entry.gzip !== undefined) return entry.gzip;
    const zipped = entry.document.then(gzipParts);
    entry.gzip = zipped;
    zipped.then(
      () => {
        entry.gzipDone = true;
        if ((this.lastGoodGzip.get(entry.format)?.gen ?? -1) < entry.gen) this.lastGoodGzip.set(entry.format, entry);
      },
      () => {
        if (entry.gzip === zipped) entry.gzip = undefined;
      },
    );
    return zipped;
  }

  private forget(format: ExpositionFormat, entry: Rendered): void {
    if (this.rendered.get(format) === entry) this.rendered.delete(format);
  }

  private dropOwners(job: string): void {
    const part = this.jobs.get(job);
    if (part === undefined) return;
    for (const name of part.names) if (this.owners.get(name)?.job === job) this.owners.delete(name);
  }

  private async build(format: ExpositionFormat): Promise<readonly Buffer[]> {
    // The jobs' part is taken synchronously: the document shows the jobs as they were when asked.
    const parts: Buffer[] = [];
    for (const [, part] of [...this.jobs].sort(([a], [b]) => compareStrings(a, b))) {
      part[format] ??= renderPart(part, format);
      parts.push(await part[format]);
    }
    let tail = '';
    // A self-metric registered after the jobs' set() escaped set()'s check: refuse here rather than
    // serve a document with two TYPE lines for one name.
    for (const m of registryMetricTypes(this.registry)) {
      for (const name of occupiedNames(m.name, m.type)) {
        const owner = this.owners.get(name);
        if (owner !== undefined) throw clash(owner.metric, owner.job, name, `the exporter's self-metric "${m.name}"`);
      }
    }
    tail += await renderRegistry(this.registry, format);
    // OpenMetrics: one `# EOF`, at the very end, after the self-metrics.
    if (format === 'openmetrics') tail += '# EOF\n';
    parts.push(Buffer.from(tail, 'utf8'));
    return parts;
  }
}
