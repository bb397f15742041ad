/**
 * The exporter's own errors, one catalogue: every kind has a stable code (below) and a class in the
 * folder that raises it, all on ExporterError. Such an error is expected: its message is the whole
 * story for the user, one line per problem (which map, which field, which errno and what it means),
 * and it is shown without a stack. Anything else that is thrown is a bug and keeps its stack.
 */
export const ERROR_CODES = {
  /** BpfError (src/bpf/errors.ts): a BPF syscall failed; errno, its name, the operation and the map. */
  ERR_BPF: 'a BPF operation failed',
  /** BtfError (src/bpf/btf-parse.ts): BTF that cannot be parsed, or a kind this reader does not know. */
  ERR_BTF: 'malformed or unsupported BTF',
  /** LayoutError (src/layout/build.ts): a key or value layout that does not fit its map. */
  ERR_LAYOUT: 'a layout does not fit',
  /** DecoderConfigError (src/decode/errors.ts): a label's decoder that does not fit its field. */
  ERR_DECODER: 'a decoder does not fit its field',
  /** ConfigError and ConfigErrors (src/yaml/errors.ts): problems of a config file, each at FILE:LINE:COLUMN. */
  ERR_CONFIG: 'the config has problems',
  /** CheckpointError (src/collect/checkpoint.ts): the state file cannot be written, or has the wrong shape. */
  ERR_CHECKPOINT: 'the checkpoint cannot be saved or read',
  /** JournalError (src/collect/journal.ts): the drain journal cannot be written or read back. */
  ERR_JOURNAL: 'the drain journal cannot be written or read',
  /** UnsupportedMetric (src/publish/otlp-encode.ts): a kind of metric our OTLP encoder leaves to the SDK's serializer. */
  ERR_OTLP_UNSUPPORTED: 'a metric the OTLP encoder does not write',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The base of every error in ERROR_CODES. */
export class ExporterError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Whether `e` is one of ours, meant for the user as it is (one line per problem, no stack). */
export function isExpected(e: unknown): e is ExporterError {
  return e instanceof ExporterError;
}
