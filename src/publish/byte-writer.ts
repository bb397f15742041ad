/**
 * A growing output buffer that encoders write byte by byte: the /metrics text (prometheus-render.ts)
 * and OTLP protobuf (otlp-encode.ts). No string or object per line or per point.
 */
export class ByteWriter {
  buf: Buffer;
  pos = 0;

  /**
   * `size`: the expected length (e.g. the last render's, or an exact size), so the buffer rarely
   * grows; or a buffer to write into from its start (one reused from an earlier encoding).
   */
  constructor(size: number | Buffer) {
    this.buf = typeof size === 'number' ? Buffer.allocUnsafe(size) : size;
  }

  /** Room for `n` more bytes. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.pos + n, this.buf.length * 2, 1024));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Bytes already encoded: copied as they are. */
  bytes(src: Uint8Array): void {
    this.reserve(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  byte(c: number): void {
    this.reserve(1);
    this.buf[this.pos++] = c;
  }

  utf8(s: string): void {
    this.reserve(Buffer.byteLength(s));
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** The bytes written (a view of the buffer, not a copy). */
  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
