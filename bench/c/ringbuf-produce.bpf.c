// ringbuf-produce.bpf.c: the producer of bench/ringbuf.ts.
//
// A raw_tp program attached to nothing: it runs only through BPF_PROG_TEST_RUN, which
// bench/c/ringbuf-produce.c calls in a tight loop. Each run sends ctl.count 64-byte records shaped
// like a span (u64 seq first, then ids and timestamps) with bpf_ringbuf_output; a send the ring
// refuses (it is full) is counted in ctl.failed. ctl.seq is the next sequence number: every send,
// refused or not, takes one, so a consumer sees a refused record as a gap in the sequence.
//
// Build (bench/ringbuf.ts does it, into bench/out/):
//   clang -g -O2 -target bpf -I/usr/include/$(gcc -dumpmachine) [-DRING_SIZE=<bytes>] \
//     -c bench/c/ringbuf-produce.bpf.c -o bench/out/ringbuf-produce.bpf.o
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef RING_SIZE
#define RING_SIZE (1 << 20)
#endif

struct ctl {
	__u32 count;    // records a run sends (set by the driver)
	__u32 pad;
	__u64 seq;      // next sequence number
	__u64 failed;   // sends the ring refused
	__u64 runs;     // runs of the program
};

// 64 bytes, like the span records a tracer sends.
struct span {
	__u64 seq;
	__u64 trace_id_hi;
	__u64 trace_id_lo;
	__u64 span_id;
	__u64 parent_id;
	__u64 start_ns;
	__u64 end_ns;
	__u32 pid;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_SIZE);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctl);
} ctl SEC(".maps");

struct loop_ctx {
	struct ctl *c;
	__u64 now;
};

static long send_one(__u64 index, void *data)
{
	struct loop_ctx *lc = data;
	struct ctl *c = lc->c;
	__u64 seq = c->seq++;
	struct span s = {
		.seq = seq,
		.trace_id_hi = 0x5eed000000000000ull | (seq >> 4),
		.trace_id_lo = seq * 0x9e3779b97f4a7c15ull,
		.span_id = seq ^ 0xabcdef,
		.parent_id = seq - 1,
		.start_ns = lc->now + index,
		.end_ns = lc->now + index + 1000,
		.pid = (__u32)(seq & 0xffff),
		.kind = (__u32)(seq & 3),
	};

	if (bpf_ringbuf_output(&events, &s, sizeof(s), 0) != 0)
		c->failed++;
	return 0;
}

SEC("raw_tp")
int produce(void *ctx)
{
	__u32 zero = 0;
	struct ctl *c = bpf_map_lookup_elem(&ctl, &zero);
	struct loop_ctx lc;

	if (!c)
		return 0;
	lc.c = c;
	lc.now = bpf_ktime_get_ns();
	c->runs++;
	bpf_loop(c->count, send_one, &lc, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
