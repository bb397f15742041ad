// System call latency by syscall: a per-CPU hash histogram with exp2 buckets of nanoseconds.
// Read by latency.yaml; built by `npm run build:bpf` (CO-RE, vmlinux.h from this kernel's BTF).
//
// raw_syscalls/sys_enter notes the entry time of the thread; raw_syscalls/sys_exit takes the
// latency and counts it in the row { nr, slot }, slot = ceil(log2(ns)). Every row also adds its
// latencies to sum_ns, the value field `sum:` names in latency.yaml. Why a sum field and not the
// ebpf_exporter convention of the sum at key max + 1: blocking syscalls (epoll_wait, futex, wait4,
// nanosleep) routinely last longer than the top bucket, and a row at max + 1 would then be read as
// the sum; with a field, rows above max are just +Inf.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

// Buckets 0..MAX_SLOT are 2^0 ns .. 2^30 ns (about 1.07 s), latency.yaml's `max`. Longer calls are
// all counted in the row MAX_SLOT + 1, so a syscall has at most MAX_SLOT + 2 rows: the map stays
// bounded however long a call blocks (the exporter puts keys above max in +Inf).
#define MAX_SLOT 30

// exit and exit_group never return, so their sys_exit never fires: an entry time noted for them
// would stay in the map until evicted. The numbers differ per architecture.
#if defined(__TARGET_ARCH_x86)
#define NR_EXIT 60
#define NR_EXIT_GROUP 231
#elif defined(__TARGET_ARCH_arm64)
#define NR_EXIT 93
#define NR_EXIT_GROUP 94
#else
#error "syscall numbers of exit and exit_group are not known for this architecture"
#endif

struct latency_key {
	__u32 nr;
	__u32 slot;
};

struct latency_value {
	__u64 count;
	__u64 sum_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	// A few hundred syscalls in use at most, times MAX_SLOT + 2 slots each.
	__uint(max_entries, 16384);
	__type(key, struct latency_key);
	__type(value, struct latency_value);
} syscall_latency SEC(".maps");

// Entry time per thread id. LRU: a thread that never reaches sys_exit (an execve from a thread other
// than the leader, say) cannot fill the map; an eviction costs at most one sample.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} syscall_start SEC(".maps");

// The smallest k with 2^k >= ns: the bucket whose bound `le = 2^k ns` is a true upper bound of the
// latency, as Prometheus's le means. (floor(log2) would put 3 ns under le = 2 ns.) BPF has no
// count-leading-zeros instruction: a binary search over the bits of ns - 1.
static __always_inline __u32 slot_of(__u64 ns)
{
	__u64 v;
	__u32 k = 0;

	if (ns <= 1)
		return 0;
	v = ns - 1;
	if (v >> 32) { v >>= 32; k += 32; }
	if (v >> 16) { v >>= 16; k += 16; }
	if (v >> 8) { v >>= 8; k += 8; }
	if (v >> 4) { v >>= 4; k += 4; }
	if (v >> 2) { v >>= 2; k += 2; }
	if (v >> 1) { k += 1; }
	return k + 1;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int latency_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();

	if (ctx->id == NR_EXIT || ctx->id == NR_EXIT_GROUP)
		return 0;
	bpf_map_update_elem(&syscall_start, &tid, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int latency_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct latency_value *v, zero = {};
	struct latency_key key;
	__u64 *start, ns;

	start = bpf_map_lookup_elem(&syscall_start, &tid);
	// No entry time: the call began before the program was attached (or was evicted).
	if (!start)
		return 0;
	ns = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&syscall_start, &tid);
	// id is -1 when a tracer cancelled the call: no syscall to label it with.
	if (ctx->id < 0)
		return 0;

	key.nr = (__u32)ctx->id;
	key.slot = slot_of(ns);
	if (key.slot > MAX_SLOT)
		key.slot = MAX_SLOT + 1;

	v = bpf_map_lookup_elem(&syscall_latency, &key);
	if (!v) {
		// A new row is created empty and then added to like any other: when two CPUs create the
		// same row at once, the loser's BPF_NOEXIST fails but its sample still lands in the row.
		bpf_map_update_elem(&syscall_latency, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&syscall_latency, &key);
		if (!v)
			return 0; // the map is full
	}
	// This CPU's slot of a per-CPU value: tracepoint programs run with preemption off, so nothing
	// else writes it meanwhile and plain adds are exact.
	v->count++;
	v->sum_ns += ns;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
