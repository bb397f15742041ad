// System calls by process and syscall number: a per-CPU hash counted on every syscall entry.
// Read by syscalls.yaml; built by `npm run build:bpf` (CO-RE, vmlinux.h from this kernel's BTF).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct syscall_key {
	__u32 pid;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct syscall_key);
	__type(value, __u64);
} syscall_counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_syscall(struct trace_event_raw_sys_enter *ctx)
{
	struct syscall_key k = {
		.pid = bpf_get_current_pid_tgid() >> 32,
		.nr = (__u32)ctx->id,
	};
	__u64 zero = 0, *n;

	n = bpf_map_lookup_elem(&syscall_counts, &k);
	if (!n) {
		// Create the row empty, then add: if another CPU created it meanwhile, our NOEXIST insert
		// fails and the lookup below finds theirs, so no count is lost.
		bpf_map_update_elem(&syscall_counts, &k, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&syscall_counts, &k);
		if (!n)
			return 0;
	}
	(*n)++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
