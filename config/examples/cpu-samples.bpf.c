// On-CPU samples by process name: a perf_event program the exporter attaches to a sampling event on
// every online CPU (cpu-clock at 99 Hz in cpu-samples.yaml). Each sample counts once for the process
// (its main thread's name) that was running on the CPU when the event fired; the idle task is not
// counted. Read (and drained) by cpu-samples.yaml; built by `npm run build:bpf` (CO-RE, vmlinux.h
// from this kernel's BTF).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

struct process {
	char comm[TASK_COMM_LEN];
};

struct {
	// Per CPU: each sample is counted on its own CPU's slot, without atomics. LRU: processes that
	// come and go (kworkers, short jobs) evict old names instead of filling the map for good.
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct process);
	__type(value, __u64);
} samples SEC(".maps");

SEC("perf_event")
int sample_process(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct process key = {};
	__u64 one = 1, *n;

	// pid 0 is the idle task (swapper/N): the CPU ran no process.
	if ((bpf_get_current_pid_tgid() >> 32) == 0)
		return 0;
	// The process's name is its main thread's: threads name themselves apart (a runtime's workers).
	BPF_CORE_READ_STR_INTO(&key.comm, task, group_leader, comm);

	n = bpf_map_lookup_elem(&samples, &key);
	if (n) {
		(*n)++;
		return 0;
	}
	// Another sample on this CPU cannot run in between (perf_event programs do not nest on a CPU),
	// but one on another CPU may have added the key: then its slot for this CPU is zero, and ours goes in below.
	if (bpf_map_update_elem(&samples, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	n = bpf_map_lookup_elem(&samples, &key);
	if (n)
		(*n)++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
