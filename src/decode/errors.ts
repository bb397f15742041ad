/**
 * The one error type of src/decode: a label's decoder does not fit its field, or its options are
 * wrong. Thrown only while building decoders (config time), never from decode(). `message` is a
 * single line for the user; the config layer adds where in the file the label was written.
 */
import { ExporterError } from '../util/errors.js';
export class DecoderConfigError extends ExporterError {
  declare readonly code: 'ERR_DECODER';
  /** The decoder as named in the config (or the default one), e.g. `inet_ip`. */
  readonly decoder: string;
  /** The layout field the label reads. */
  readonly field: string;

  constructor(message: string, decoder: string, field: string) {
    super('ERR_DECODER', message);
    this.decoder = decoder;
    this.field = field;
  }
}
