/**
 * HTTP content negotiation for /metrics: which exposition format (Accept) and whether to gzip
 * (Accept-Encoding). Pure functions of the header text, so the server can call them per request.
 */

import type { ExpositionFormat } from '../metric/names.js';

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export interface Negotiated {
  readonly format: ExpositionFormat;
  readonly contentType: string;
}

// Shared, frozen answers: a scrape allocates nothing to learn its format.
const TEXT: Negotiated = Object.freeze({ format: 'text', contentType: TEXT_CONTENT_TYPE });
const OPENMETRICS: Negotiated = Object.freeze({ format: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE });

/** One element of an Accept or Accept-Encoding list, lowercased, with its weight. */
interface Range {
  /** For Accept: "type/subtype"; for Accept-Encoding: the coding. */
  value: string;
  params: Map<string, string>;
  q: number;
}

// RFC 9110 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
// RFC 9110 qvalue: at most three decimals, never above 1.
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Splits `text` at `sep`, except inside quoted strings (a quoted parameter value may hold a comma
 * or a semicolon). A backslash inside quotes escapes the next character.
 */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A parameter value: a token, or a quoted string with its escapes removed; undefined when malformed. */
function paramValue(raw: string): string | undefined {
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  return TOKEN.test(raw.toLowerCase()) ? raw : undefined;
}

/**
 * Parses a comma-separated header of weighted elements. Malformed elements (bad token, parameter
 * without "=", q outside 0..1 or with more than three decimals) are dropped, not fatal: one odd
 * client part must not cost the whole header.
 */
function parseList(header: string, valid: (value: string) => boolean): Range[] {
  const ranges: Range[] = [];
  for (const part of splitOutsideQuotes(header, ',')) {
    const [head, ...rawParams] = splitOutsideQuotes(part, ';');
    const value = head.trim().toLowerCase();
    if (value === '') continue; // empty list elements are allowed by the list syntax
    if (!valid(value)) continue;
    const params = new Map<string, string>();
    let q = 1;
    let ok = true;
    for (const raw of rawParams) {
      const eq = raw.indexOf('=');
      const name = (eq < 0 ? raw : raw.slice(0, eq)).trim().toLowerCase();
      const v = eq < 0 ? undefined : paramValue(raw.slice(eq + 1).trim());
      if (!TOKEN.test(name) || v === undefined) {
        ok = false;
        break;
      }
      if (name === 'q') {
        if (!QVALUE.test(v)) {
          ok = false;
          break;
        }
        q = Number(v);
      } else {
        params.set(name, v);
      }
    }
    if (ok) ranges.push({ value, params, q });
  }
  return ranges;
}

function isMediaRange(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const type = value.slice(0, slash);
  const subtype = value.slice(slash + 1);
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return false;
  // "*/plain" is not a media range; only "*/*" and "type/*" are.
  return type !== '*' || subtype === '*';
}

/**
 * The weight the header gives to one concrete media type (`type/subtype` with a `version`), per
 * RFC 9110 12.5.1: the most specific matching range decides (type/subtype;version= >
 * type/subtype > type/* > *\/*). `wildcards: false` counts only ranges naming the type exactly.
 * Returns 0 when nothing matches (not acceptable).
 */
function weight(ranges: readonly Range[], mediaType: string, version: string, wildcards: boolean): number {
  const type = mediaType.slice(0, mediaType.indexOf('/'));
  let best = -1;
  let q = 0;
  for (const r of ranges) {
    let specificity: number;
    const v = r.params.get('version');
    if (r.value === mediaType) {
      if (v !== undefined && v !== version) continue; // another version of the format: not ours
      specificity = v === undefined ? 2 : 3;
    } else if (wildcards && r.value === `${type}/*`) {
      specificity = 1;
    } else if (wildcards && r.value === '*/*') {
      specificity = 0;
    } else {
      continue;
    }
    // Equally specific duplicates: the friendlier weight wins.
    if (specificity > best || (specificity === best && r.q > q)) {
      best = specificity;
      q = r.q;
    }
  }
  return q;
}

/**
 * Picks the exposition format for an Accept header.
 *
 * OpenMetrics 1.0.0 only when the client names application/openmetrics-text itself (unversioned or
 * version=1.0.0; version=0.0.1 is another format) with a weight > 0 and at least that of text 0.0.4
 * (text/plain, text/*, *\/*). Wildcards alone mean text: a curl or a browser gets the format people
 * read. Everything else, including a header that accepts neither, gets text 0.0.4: answering
 * something readable beats a 406 for a metrics endpoint.
 */
export function negotiate(accept: string | undefined): Negotiated {
  if (accept === undefined || accept === '') return TEXT;
  const ranges = parseList(accept, isMediaRange);
  const om = weight(ranges, 'application/openmetrics-text', '1.0.0', false);
  if (om === 0) return TEXT;
  const text = weight(ranges, 'text/plain', '0.0.4', true);
  return om >= text ? OPENMETRICS : TEXT;
}

/**
 * Whether to gzip the response, per Accept-Encoding with its weights (RFC 9110 12.5.3).
 *
 * gzip's weight comes from "gzip" (or its old alias "x-gzip"), else from "*", else 0: an unlisted
 * coding is not acceptable, and gzip;q=0 refuses it. It is used unless identity is explicitly
 * weighted higher ("identity;q=1, gzip;q=0.5", or "*" covering identity above gzip). When identity is
 * not mentioned it does not compete: a client listing gzip at any weight above 0 gets gzip. No
 * header, or an empty one (which asks for identity only), means no gzip.
 */
export function wantsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined || acceptEncoding.trim() === '') return false;
  const codings = parseList(acceptEncoding, (v) => TOKEN.test(v));
  let gzip: number | undefined;
  let identity: number | undefined;
  let any: number | undefined;
  for (const c of codings) {
    if (c.value === 'gzip' || c.value === 'x-gzip') gzip = Math.max(gzip ?? 0, c.q);
    else if (c.value === 'identity') identity = Math.max(identity ?? 0, c.q);
    else if (c.value === '*') any = Math.max(any ?? 0, c.q);
  }
  const g = gzip ?? any ?? 0;
  const id = identity ?? any ?? 0;
  return g > 0 && g >= id;
}
