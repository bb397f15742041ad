import { needs, type DecoderFactory } from './field.js';

/**
 * inet_ip: an IPv4 or IPv6 address stored as the kernel stores it, in network byte order, so the
 * bytes are read in memory order whatever the field type says (a u32 saddr and a be32 saddr hold
 * the same bytes). Accepted: 4-byte integers and u8[4] (IPv4), u8[16] (IPv6).
 *
 * With `style: ebpf_exporter` an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is written as theirs
 * writes it, as the IPv4 address alone: `1.2.3.4`.
 */
export const createInetIpDecoder: DecoderFactory = (field, spec) => {
  const t = field.type;
  const v4 = (t.kind === 'int' && t.size === 4) || (t.kind === 'bytes' && t.size === 4);
  const v6 = t.kind === 'bytes' && t.size === 16;
  if (!v4 && !v6) needs('inet_ip', field, 'a 4-byte integer, u8[4] or u8[16] field');
  if (v4) return { name: 'inet_ip', decode: formatIPv4 };
  if (spec.style !== 'ebpf_exporter') return { name: 'inet_ip', decode: formatIPv6 };
  return {
    name: 'inet_ip',
    decode: (buf, offset) => {
      const text = formatIPv6(buf, offset);
      return text.startsWith('::ffff:') && text.includes('.') ? text.slice(7) : text;
    },
  };
};

export function formatIPv4(buf: Uint8Array, offset: number): string {
  return `${buf[offset] ?? 0}.${buf[offset + 1] ?? 0}.${buf[offset + 2] ?? 0}.${buf[offset + 3] ?? 0}`;
}

/**
 * RFC 5952 text: lowercase hex without leading zeros, the longest run of two or more zero groups
 * (the first of equally long ones) written `::`, and IPv4-mapped addresses (::ffff:0:0/96, what a
 * dual-stack socket reports for an IPv4 peer) with their last 32 bits in dotted decimal. Written by
 * hand: node:net can parse addresses but has no formatter, and URL's IPv6 serializer never prints
 * the mixed form.
 */
export function formatIPv6(buf: Uint8Array, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((buf[offset + 2 * i] ?? 0) << 8) | (buf[offset + 2 * i + 1] ?? 0));

  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(buf, offset + 12)}`;
  }

  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }

  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
