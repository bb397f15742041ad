/**
 * How a label's value is made from a key or value field. Built once per label (with whatever the
 * decoder needs: tables, caches, compiled patterns), then called only when a series is new.
 */
export interface LabelDecoder {
  /** The decoder's name as written in the config (uint, hex, ksym, ...). */
  readonly name: string;
  /**
   * The label value for the field's bytes at `offset` of `buf` (the field's own size and type are
   * known to the decoder). `undefined` means: drop this row (a regexp that did not match).
   */
  decode(buf: Uint8Array, offset: number): string | undefined;
  /**
   * Whether `label` (this decoder's answer) stands in for a name the decoder's table did not hold
   * yet (a cgroup, interface, device or symbol newer than the last walk of the system): the
   * aggregator then decodes that key again in the next cycles instead of keeping the stand-in.
   */
  provisional?(label: string): boolean;
}

/** The decoder part of a label's config. */
export interface DecoderSpec {
  decoder?: string;
  /** static_map: raw value (as written in YAML, a decimal string) -> label value. */
  map?: Readonly<Record<string, string>>;
  /** static_map: pass unknown values through as their number instead of `unknown:<n>`. */
  allow_unknown?: boolean;
  /** regexp: rows whose decoded (string) value does not match are dropped. */
  pattern?: string;
  /** regexp: several patterns, tried in order (instead of pattern). */
  patterns?: readonly string[];
  /** regexp: the label is the part matched, or the first group of the pattern that matched. */
  rewrite?: boolean;
  /**
   * The label values cloudflare/ebpf_exporter gives, where they differ from ours (unknown inputs,
   * syscall names, full cgroup paths...): set by the compat translator, see STYLE_DECODERS.
   */
  style?: 'ebpf_exporter';
}

/**
 * An env with its defaults filled in, plus a clock. Decoders built from the same env object get the
 * same context, and through it share their system tables (one parsed kallsyms, one cgroup cache),
 * so pass one env to every createDecoder call of a process.
 */
export interface DecoderContext {
  readonly kallsyms: () => string;
  readonly partitions: () => string;
  /** undefined: find the cgroup v2 mount when first needed. */
  readonly cgroupRoot: string | undefined;
  readonly ifname: (index: number) => string | undefined;
  readonly arch: string;
  readonly pciIds: readonly string[];
  readonly cacheSize: number;
  /** Milliseconds on a monotonic clock, for "at most once per second" re-reads. */
  readonly now: () => number;
}
