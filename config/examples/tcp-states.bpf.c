// TCP sockets by state and network namespace, now: a hash of the sockets this program has seen
// change state, one row per socket, which the exporter sums into a gauge per (state, netns).
// Read by tcp-states.yaml; built by `npm run build:bpf` (CO-RE, vmlinux.h from this kernel's BTF).
//
// Why not an array of counters, -1 on the old state and +1 on the new, as the tracepoint suggests:
//  - a socket that existed before the program was attached is unknown; its first -1 would take a
//    count below zero (and keep it off by one forever);
//  - an accepted connection is cloned from its listener and reports LISTEN -> SYN_RECV although
//    the listener stays in LISTEN: -1 on LISTEN for every connection accepted;
//  - counters of a network namespace that is gone would stay in the map at 0 for ever.
// Here a socket is counted only once the program knows its state, in the state it really is in,
// and its row leaves with it (TCP_CLOSE): no count can go below zero or outlive its sockets, and
// a socket the program never saw enter a state is simply not counted until its next change.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct tcp_socket {
	// The network namespace's inode number, as in /proc/PID/ns/net and `ip netns` files.
	__u32 netns;
	// TCP_ESTABLISHED (1) .. TCP_NEW_SYN_RECV (12), the kernel's numbers (include/net/tcp_states.h).
	__u32 state;
	// Always 1: rows whose labels decode alike are summed, so the sum of this field is a count.
	__u32 sockets;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	// Sockets beyond this many are not counted (their insert fails) until rows free up.
	__uint(max_entries, 131072);
	// Rows are allocated as sockets come, not all up front (about 100 bytes each).
	__uint(map_flags, BPF_F_NO_PREALLOC);
	// The socket's kernel address: unique while the socket lives.
	__type(key, __u64);
	__type(value, struct tcp_socket);
} tcp_sockets SEC(".maps");

// Writes to tcp_sockets the kernel refused (the table full, or its bucket lock not taken in time
// on a busy machine): each one leaves a socket uncounted or a row stale until it next changes.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tcp_socket_write_errors SEC(".maps");

static __always_inline void count_error(long err)
{
	__u32 zero = 0;
	__u64 *n;

	if (err == 0)
		return;
	n = bpf_map_lookup_elem(&tcp_socket_write_errors, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tracepoint/sock/inet_sock_set_state")
int track_tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_socket row = { .state = ctx->newstate, .sockets = 1 };

	// The tracepoint also fires for other inet protocols (MPTCP's own sockets, SCTP...).
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	// A closed socket is gone (or unused): not counted. A socket entering TIME_WAIT hands over to a
	// timewait mini-socket and reports FIN_WAIT2 -> CLOSE here, so TIME_WAIT is never counted either.
	if (ctx->newstate == TCP_CLOSE) {
		long err = bpf_map_delete_elem(&tcp_sockets, &sk);

		// -ENOENT: a socket this program never saw (it existed before the attach), not an error.
		if (err != -2)
			count_error(err);
		return 0;
	}
	// The namespace is read on every change, not kept from the first: an address reused by a new
	// socket whose old row was somehow missed would otherwise inherit its namespace.
	row.netns = BPF_CORE_READ((struct sock *)ctx->skaddr, __sk_common.skc_net.net, ns.inum);
	// One socket changes state under its own lock, so its row is never written from two CPUs at
	// once; replacing it whole (BPF_ANY) needs no read-modify-write.
	count_error(bpf_map_update_elem(&tcp_sockets, &sk, &row, BPF_ANY));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
