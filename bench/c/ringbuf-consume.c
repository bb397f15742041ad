// ringbuf-consume: the C consumer of bench/ringbuf.ts.
//
//   ringbuf-consume <pinned-ringbuf> <pinned-ctl-map> <seconds> <poll|busy>
//   ringbuf-consume <pinned-ringbuf> <pinned-ctl-map> <fills> drain <pinned-program>
//
// Consumes the pinned BPF_MAP_TYPE_RINGBUF with libbpf's ring_buffer (ring_buffer__new on the pin's
// fd): the callback copies each record (up to 64 bytes) into a local array, counts it, and checks
// its sequence number (the record's first u64): a gap of n is n records the ring refused while full.
// First whatever the ring holds is consumed untimed (at most a ring's worth: the backlog the
// producer left while nobody was consuming); then
//   poll:  for <seconds>, ring_buffer__poll(rb, 100) in a loop, as a libbpf consumer normally runs
//          (epoll_wait sleeps when the ring is empty; the kernel wakes it when a record comes);
//   busy:  for <seconds>, ring_buffer__consume(rb) in a loop, never sleeping;
//   drain: <fills> times, the pinned producer program (bench/c/ringbuf-produce.bpf.c) is run once
//          through BPF_PROG_TEST_RUN with ctl.count set to what the ring holds, filling it, then one
//          ring_buffer__consume empties it; only the consume calls are timed. The producer driver
//          (ringbuf-produce) must not be running.
// ring_buffer__consume and __poll return only once they have caught up with the producer, which a
// producer faster than the consumer never lets them do: the callback stops them (returns < 0)
// once the window is over (checked every 4096 records) or the backlog is taken.
// Prints one JSON line:
//   {"records":N,"bytes":N,"gaps":N,"seconds":S,"cpu":S,"produced":N,"failed":N}
// records/bytes/gaps: what the callback saw in the timed part; seconds: its wall time; cpu: this
// process's user+sys time in it; produced/failed: the change of the producer's ctl.seq and
// ctl.failed over it (read before and after it).
//
// Build: cc -O2 -o bench/out/ringbuf-consume bench/c/ringbuf-consume.c -lbpf
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define PROG "ringbuf-consume"
#include "ringbuf-common.h"

#define WIDTH 64
#define SLOTS 4096
#define STOP (-ECANCELED)

// Must match struct ctl of ringbuf-produce.bpf.c.
struct state {
	uint64_t records;
	uint64_t bytes;
	uint64_t gaps;
	uint64_t last;      // the last sequence number seen
	int seen;           // any record seen yet
	int bad;            // a sequence number went backwards
	uint64_t budget;    // stop the consume call after this many records (0: no limit)
	double deadline;    // stop the consume call once this time has passed (checked every 4096 records)
	uint64_t slot;
	unsigned char copy[SLOTS][WIDTH];
};

static struct state st;


static int on_record(void *ctx, void *data, size_t size)
{
	struct state *s = ctx;
	unsigned char *dst = s->copy[s->slot++ & (SLOTS - 1)];
	size_t n = size < WIDTH ? size : WIDTH;
	memcpy(dst, data, n);
	if (n < WIDTH)
		memset(dst + n, 0, WIDTH - n);
	uint64_t seq;
	memcpy(&seq, dst, sizeof(seq));
	if (s->seen) {
		if (seq <= s->last) {
			s->bad = 1;
			return -1;
		}
		s->gaps += seq - s->last - 1;
	}
	s->last = seq;
	s->seen = 1;
	s->records++;
	s->bytes += size;
	// ring_buffer__consume and __poll return only once they have caught up with the producer: a
	// producer faster than we are would keep them forever. Hence a way out (returning < 0 makes
	// libbpf store the consumer position, this record consumed, and return at once).
	if (s->budget != 0 && s->records >= s->budget)
		return STOP;
	if ((s->records & 4095) == 0 && now_s() >= s->deadline)
		return STOP;
	return 0;
}

static void read_ctl(int fd, struct ctl *c)
{
	uint32_t zero = 0;
	if (bpf_map_lookup_elem(fd, &zero, c) != 0)
		die("read ctl", errno);
}

static void write_count(int fd, uint32_t count)
{
	uint32_t zero = 0;
	struct ctl c;
	read_ctl(fd, &c);
	c.count = count;
	if (bpf_map_update_elem(fd, &zero, &c, BPF_ANY) != 0)
		die("write ctl", errno);
}

static void usage(const char *self)
{
	fprintf(stderr, "usage: %s <pinned-ringbuf> <pinned-ctl-map> <seconds> <poll|busy>\n"
			"       %s <pinned-ringbuf> <pinned-ctl-map> <fills> drain <pinned-program>\n", self, self);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 5)
		usage(argv[0]);
	int busy = strcmp(argv[4], "busy") == 0;
	int drain = strcmp(argv[4], "drain") == 0;
	if (drain ? argc != 6 : argc != 5 || (!busy && strcmp(argv[4], "poll") != 0))
		usage(argv[0]);
	int fd = bpf_obj_get(argv[1]);
	if (fd < 0)
		die(argv[1], errno);
	int ctl_fd = bpf_obj_get(argv[2]);
	if (ctl_fd < 0)
		die(argv[2], errno);
	double seconds = strtod(argv[3], NULL);
	int prog = -1;
	if (drain && (prog = bpf_obj_get(argv[5])) < 0)
		die(argv[5], errno);

	struct ring_buffer *rb = ring_buffer__new(fd, on_record, &st, NULL);
	if (rb == NULL)
		die("ring_buffer__new", errno);

	// The backlog, untimed: at most what the ring holds (it may never catch up with a faster producer).
	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) != 0)
		die("map info", errno);
	uint32_t capacity = info.max_entries / (WIDTH + 8);
	st.budget = capacity + 1;
	st.deadline = now_s() + (drain ? 60 : seconds);
	int n = ring_buffer__consume(rb);
	if (n < 0 && n != STOP)
		die("ring_buffer__consume", -n);
	st.records = st.bytes = st.gaps = 0;
	st.budget = 0;

	struct ctl c0, c1;
	double t, wall = 0, cpu = 0;
	if (drain) {
		// <fills> times: fill the empty ring (the program run here, on this CPU), then time one
		// ring_buffer__consume taking all of it. The producer driver must not be running.
		write_count(ctl_fd, capacity);
		st.seen = 0; // the producer driver's last sends were refused: no gap to count before the first fill
		long fills = strtol(argv[3], NULL, 10);
		st.deadline = now_s() + 3600;
		read_ctl(ctl_fd, &c0);
		for (long i = 0; i < fills; i++) {
			LIBBPF_OPTS(bpf_test_run_opts, opts);
			if (bpf_prog_test_run_opts(prog, &opts) != 0)
				die("BPF_PROG_TEST_RUN", errno);
			double cpu0 = cpu_s(), t0 = now_s();
			n = ring_buffer__consume(rb);
			t = now_s();
			cpu += cpu_s() - cpu0;
			wall += t - t0;
			if (n < 0)
				die("ring_buffer__consume", -n);
		}
		read_ctl(ctl_fd, &c1);
	} else {
		read_ctl(ctl_fd, &c0);
		double cpu0 = cpu_s();
		double t0 = now_s();
		double deadline = t0 + seconds;
		st.deadline = deadline;
		while ((t = now_s()) < deadline) {
			n = busy ? ring_buffer__consume(rb) : ring_buffer__poll(rb, 100);
			if (n < 0 && n != -EINTR && n != STOP) {
				if (st.bad)
					fprintf(stderr, "ringbuf-consume: sequence number went backwards after %" PRIu64 "\n", st.last);
				die(busy ? "ring_buffer__consume" : "ring_buffer__poll", -n);
			}
		}
		t = now_s();
		wall = t - t0;
		cpu = cpu_s() - cpu0;
		read_ctl(ctl_fd, &c1);
	}
	ring_buffer__free(rb);
	printf("{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"seconds\":%.6f,\"cpu\":%.6f,\"produced\":%" PRIu64 ",\"failed\":%" PRIu64 "}\n",
	       st.records, st.bytes, st.gaps, wall, cpu, c1.seq - c0.seq, c1.failed - c0.failed);
	return 0;
}
