import { describe, expect, it } from 'vitest';
import { negotiate, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, wantsGzip } from '../../../src/publish/negotiate.js';

const PROMETHEUS_2 = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const PROMETHEUS_3 =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,' +
  'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1';

const format = (accept: string | undefined): string => negotiate(accept).format;

describe('negotiate', () => {
  it("answers Prometheus's own Accept header with OpenMetrics 1.0.0", () => {
    expect(negotiate(PROMETHEUS_2)).toEqual({ format: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE });
    expect(OPENMETRICS_CONTENT_TYPE).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(format(PROMETHEUS_3)).toBe('openmetrics');
  });

  it('gives text 0.0.4 to curl, to no header and to text-only clients', () => {
    expect(negotiate('*/*')).toEqual({ format: 'text', contentType: TEXT_CONTENT_TYPE });
    expect(TEXT_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(format(undefined)).toBe('text');
    expect(format('')).toBe('text');
    expect(format('text/plain')).toBe('text');
    expect(format('text/plain;version=0.0.4')).toBe('text');
    expect(format('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe('text');
  });

  it('takes q=0 as "not acceptable"', () => {
    expect(format('application/openmetrics-text;q=0')).toBe('text');
    expect(format('application/openmetrics-text;version=1.0.0;q=0,text/plain;q=0.1')).toBe('text');
    // The most specific range decides: the versioned refusal beats the unversioned welcome.
    expect(format('application/openmetrics-text;version=1.0.0;q=0,application/openmetrics-text')).toBe('text');
    // Refusing text does not make OpenMetrics less preferred than text.
    expect(format('text/plain;q=0,application/openmetrics-text;q=0.1')).toBe('openmetrics');
  });

  it('compares weights: OpenMetrics on a tie or above, text below', () => {
    expect(format('application/openmetrics-text;q=0.5,text/plain;q=0.5')).toBe('openmetrics');
    expect(format('application/openmetrics-text;q=0.4,text/plain;q=0.5')).toBe('text');
    expect(format('application/openmetrics-text;q=0.4,*/*;q=0.5')).toBe('text');
    expect(format('application/openmetrics-text;q=0.4,text/*;q=0.5')).toBe('text');
    expect(format('application/openmetrics-text;q=0.4,text/*;q=0.5,text/plain;version=0.0.4;q=0.3')).toBe('openmetrics');
    expect(format('application/openmetrics-text')).toBe('openmetrics');
  });

  it('speaks only OpenMetrics 1.0.0 and text 0.0.4', () => {
    expect(format('application/openmetrics-text;version=0.0.1')).toBe('text');
    expect(format('application/openmetrics-text;version=2.0.0')).toBe('text');
    // text/plain;version=1.0.0 is not our text format, so it does not compete with OpenMetrics.
    expect(format('application/openmetrics-text;q=0.2,text/plain;version=1.0.0')).toBe('openmetrics');
    // Wildcards never ask for OpenMetrics.
    expect(format('application/*')).toBe('text');
  });

  it('is case-insensitive where HTTP is, and tolerates spaces and quotes', () => {
    expect(format('Application/OpenMetrics-Text; Version=1.0.0; Q=0.9 , text/plain; q=0.5')).toBe('openmetrics');
    expect(format('application/openmetrics-text; version="1.0.0"')).toBe('openmetrics');
    expect(format('application/openmetrics-text;foo="a,b;c",text/plain;q=0.5')).toBe('openmetrics');
  });

  it('ignores malformed parts and keeps the rest', () => {
    expect(format('garbage,application/openmetrics-text')).toBe('openmetrics');
    expect(format('application/openmetrics-text;q=abc')).toBe('text');
    expect(format('application/openmetrics-text;q=1.5')).toBe('text');
    expect(format('application/openmetrics-text;q=0.1234')).toBe('text');
    expect(format('application/openmetrics-text;version')).toBe('text');
    expect(format('application/openmetrics-text;q=abc,text/plain;q=0.1')).toBe('text');
    expect(format('*/plain,application/openmetrics-text;q=0.2')).toBe('openmetrics');
    expect(format(',,application/openmetrics-text,,')).toBe('openmetrics');
    expect(format('text/plain;q=abc,application/openmetrics-text;q=0.1')).toBe('openmetrics');
  });

  it('returns shared frozen answers', () => {
    expect(negotiate('*/*')).toBe(negotiate(undefined));
    expect(Object.isFrozen(negotiate(PROMETHEUS_2))).toBe(true);
  });
});

describe('wantsGzip', () => {
  it('gzips what Prometheus, curl --compressed and browsers ask for', () => {
    expect(wantsGzip('gzip')).toBe(true);
    expect(wantsGzip('deflate, gzip, br, zstd')).toBe(true);
    expect(wantsGzip('gzip, deflate, br')).toBe(true);
    expect(wantsGzip('GZIP')).toBe(true);
    expect(wantsGzip('x-gzip')).toBe(true);
    expect(wantsGzip('*')).toBe(true);
  });

  it('does not gzip without a header, with an empty one, or when gzip is unlisted', () => {
    expect(wantsGzip(undefined)).toBe(false);
    expect(wantsGzip('')).toBe(false);
    expect(wantsGzip('identity')).toBe(false);
    expect(wantsGzip('br, deflate')).toBe(false);
  });

  it('honours q weights', () => {
    expect(wantsGzip('gzip;q=0')).toBe(false);
    expect(wantsGzip('gzip;q=0.0, identity')).toBe(false);
    expect(wantsGzip('*;q=0')).toBe(false);
    expect(wantsGzip('*, gzip;q=0')).toBe(false);
    expect(wantsGzip('gzip;q=0.5')).toBe(true);
    expect(wantsGzip('gzip;q=0.5, identity;q=0.5')).toBe(true);
    expect(wantsGzip('gzip;q=0.5, identity;q=1')).toBe(false);
    expect(wantsGzip('gzip;q=0.5, *;q=0.8')).toBe(false);
    expect(wantsGzip('gzip, identity;q=0')).toBe(true);
    expect(wantsGzip('identity;q=0, *')).toBe(true);
  });

  it('ignores malformed parts', () => {
    expect(wantsGzip('gzip;q=2')).toBe(false);
    expect(wantsGzip('gzip;q=2, *;q=0.3')).toBe(true);
    expect(wantsGzip('g zip, gzip')).toBe(true);
    expect(wantsGzip('gzip;level')).toBe(false);
  });
});
