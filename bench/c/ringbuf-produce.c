// ringbuf-produce: the driver of bench/ringbuf.ts's producer.
//
//   ringbuf-produce <pinned-program> <pinned-ctl-map> <records-per-run> <max-seconds>
//
// Opens the pinned producer program (bench/c/ringbuf-produce.bpf.c) and its pinned control map,
// sets ctl.count to <records-per-run>, then runs the program with BPF_PROG_TEST_RUN in a tight loop
// until SIGTERM/SIGINT, until <max-seconds> have passed, or until its parent dies (PR_SET_PDEATHSIG:
// a killed bench leaves no producer behind). Prints one JSON line when it stops:
//   {"runs":<test runs>,"seconds":<wall>,"cpu":<user+sys seconds>}
// Run it pinned to a CPU of its own (taskset), so that the consumer has the other one.
//
// Build: cc -O2 -o bench/out/ringbuf-produce bench/c/ringbuf-produce.c -lbpf
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define PROG "ringbuf-produce"
#include "ringbuf-common.h"

// Must match struct ctl of ringbuf-produce.bpf.c.
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s <pinned-program> <pinned-ctl-map> <records-per-run> <max-seconds>\n", argv[0]);
		return 2;
	}
	// Die with the bench, whatever killed it. (A parent already gone before this call: checked below.)
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int prog = bpf_obj_get(argv[1]);
	if (prog < 0)
		die(argv[1], errno);
	int ctl_fd = bpf_obj_get(argv[2]);
	if (ctl_fd < 0)
		die(argv[2], errno);
	uint32_t count = (uint32_t)strtoul(argv[3], NULL, 10);
	double max_seconds = strtod(argv[4], NULL);

	uint32_t zero = 0;
	struct ctl c;
	if (bpf_map_lookup_elem(ctl_fd, &zero, &c) != 0)
		die("read ctl", errno);
	c.count = count;
	if (bpf_map_update_elem(ctl_fd, &zero, &c, BPF_ANY) != 0)
		die("write ctl", errno);

	LIBBPF_OPTS(bpf_test_run_opts, opts);
	uint64_t runs = 0;
	double t0 = now_s(), cpu0 = cpu_s();
	double deadline = t0 + max_seconds;
	while (!stop) {
		int err = bpf_prog_test_run_opts(prog, &opts);
		if (err != 0 && errno != EINTR)
			die("BPF_PROG_TEST_RUN", errno);
		// The clock is read every 64 runs (a run sends thousands of records).
		if ((++runs & 63) == 0 && now_s() >= deadline)
			break;
	}
	printf("{\"runs\":%" PRIu64 ",\"seconds\":%.6f,\"cpu\":%.6f}\n", runs, now_s() - t0, cpu_s() - cpu0);
	return 0;
}
