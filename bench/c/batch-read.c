// batch-read: the C baseline of `npm run bench`.
//
//   batch-read <pinned-path> <batch|perkey> <rounds> <batch_size>
//
// Opens a pinned map read-only, then `rounds` times walks every entry and sums every u64 value
// (every possible CPU's slot for per-CPU maps). One JSON line per round on stdout:
//   {"ns":<sweep time>,"entries":<entries read>,"sum":<u64 sum of all values>}
// The clock (CLOCK_MONOTONIC) covers the whole sweep, summing included; opening the pin and
// allocating buffers are outside it.
//
// batch:  bpf_map_lookup_batch with a reused cursor, the same end-of-iteration rules as the
//         binding's BatchReader: entries that come with ENOENT count, short batches are not the
//         end (only ENOENT is), ENOSPC grows the buffers and retries from the same cursor,
//         EINTR/EBUSY consume what came and resume.
// perkey: bpf_map_get_next_key + bpf_map_lookup_elem until get_next_key says ENOENT.
//
// Build: cc -O2 -o bench/out/batch-read bench/c/batch-read.c -lbpf
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MAX_STALLED 64

struct map {
	int fd;
	const char *path;
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	int cpus;        // possible CPUs for per-CPU maps, else 1
	size_t slot;     // bytes of one CPU's slot in a value buffer
	size_t stride;   // bytes of one element's value in a value buffer
};

struct result {
	uint64_t entries;
	uint64_t sum;
};

static void die(const char *what, int err, const char *path)
{
	fprintf(stderr, "batch-read: %s: %s: %s\n", path, what, strerror(err));
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	if (p == NULL) {
		fprintf(stderr, "batch-read: out of memory (%zu x %zu bytes)\n", n, size);
		exit(1);
	}
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int is_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

static void open_map(struct map *m, const char *path)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int err;

	memset(m, 0, sizeof(*m));
	m->path = path;
	m->fd = bpf_obj_get_opts(path, &opts);
	if (m->fd < 0)
		die("open pinned map", -m->fd, path);
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(m->fd, &info, &len);
	if (err)
		die("get map info", -err, path);
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	if (m->value_size != 8) {
		fprintf(stderr, "batch-read: %s: value_size is %u; this benchmark sums u64 values (8 bytes)\n",
			path, m->value_size);
		exit(1);
	}
	if (is_percpu(m->type)) {
		m->cpus = libbpf_num_possible_cpus();
		if (m->cpus <= 0)
			die("count possible CPUs", -m->cpus, path);
		m->slot = (m->value_size + 7) & ~7u;
		m->stride = m->slot * (size_t)m->cpus;
	} else {
		m->cpus = 1;
		m->slot = m->value_size;
		m->stride = m->value_size;
	}
}

static inline uint64_t sum_value(const struct map *m, const unsigned char *v)
{
	uint64_t s = 0, x;
	for (int c = 0; c < m->cpus; c++) {
		memcpy(&x, v + (size_t)c * m->slot, sizeof(x));
		s += x;
	}
	return s;
}

struct batch_bufs {
	__u32 size;
	unsigned char *keys;
	unsigned char *values;
	unsigned char *cursor;
};

static void batch_alloc(const struct map *m, struct batch_bufs *b, __u32 size)
{
	free(b->keys);
	free(b->values);
	b->size = size;
	b->keys = xcalloc(size, m->key_size);
	b->values = xcalloc(size, m->stride);
}

static struct result sweep_batch(const struct map *m, struct batch_bufs *b)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct result r = { 0, 0 };
	int started = 0, stalled = 0;

	for (;;) {
		__u32 count = b->size;
		int ret = bpf_map_lookup_batch(m->fd, started ? b->cursor : NULL, b->cursor, b->keys, b->values,
					       &count, &opts);
		if (ret == 0 || ret == -ENOENT || ret == -EINTR || ret == -EBUSY) {
			// Entries that come with ENOENT, EINTR or EBUSY are valid and count.
			if (count > 0) {
				const unsigned char *v = b->values;
				started = 1;
				stalled = 0;
				for (__u32 i = 0; i < count; i++, v += m->stride)
					r.sum += sum_value(m, v);
				r.entries += count;
			} else if (ret != -ENOENT && ++stalled > MAX_STALLED) {
				die("lookup batch: no progress", ret == 0 ? EIO : -ret, m->path);
			}
			if (ret == -ENOENT)
				return r; // the only end of iteration
			continue;
		}
		if (ret == -ENOSPC) {
			// The next bucket does not fit: grow and retry from the same cursor.
			started = 1;
			if (b->size >= m->max_entries)
				die("lookup batch: a bucket does not fit in max_entries", ENOSPC, m->path);
			batch_alloc(m, b, b->size * 2 > m->max_entries ? m->max_entries : b->size * 2);
			continue;
		}
		die("lookup batch", -ret, m->path);
	}
}

static struct result sweep_perkey(const struct map *m, unsigned char *prev, unsigned char *next, unsigned char *value)
{
	struct result r = { 0, 0 };
	int first = 1;

	for (;;) {
		int ret = bpf_map_get_next_key(m->fd, first ? NULL : prev, next);
		if (ret == -ENOENT)
			return r;
		if (ret < 0)
			die("get next key", -ret, m->path);
		first = 0;
		ret = bpf_map_lookup_elem(m->fd, next, value);
		if (ret == 0) {
			r.sum += sum_value(m, value);
			r.entries++;
		} else if (ret != -ENOENT) { // ENOENT: deleted between the two calls
			die("lookup", -ret, m->path);
		}
		unsigned char *t = prev;
		prev = next;
		next = t;
	}
}

int main(int argc, char **argv)
{
	struct map m;
	char *end;

	if (argc != 5 || (strcmp(argv[2], "batch") != 0 && strcmp(argv[2], "perkey") != 0)) {
		fprintf(stderr, "usage: %s <pinned-path> <batch|perkey> <rounds> <batch_size>\n", argv[0]);
		return 2;
	}
	long rounds = strtol(argv[3], &end, 10);
	if (*end != '\0' || rounds < 1) {
		fprintf(stderr, "batch-read: rounds must be a positive integer, got %s\n", argv[3]);
		return 2;
	}
	long batch_size = strtol(argv[4], &end, 10);
	if (*end != '\0' || batch_size < 1 || batch_size > UINT32_MAX) {
		fprintf(stderr, "batch-read: batch_size must be a positive integer, got %s\n", argv[4]);
		return 2;
	}
	int perkey = strcmp(argv[2], "perkey") == 0;

	open_map(&m, argv[1]);

	// Buffers are allocated once, outside the timed sweeps, like the binding's BatchReader.
	struct batch_bufs b = { 0 };
	size_t cursor_size = m.key_size > 4 ? m.key_size : 4;
	unsigned char *prev = NULL, *next = NULL, *value = NULL;
	if (perkey) {
		prev = xcalloc(1, cursor_size);
		next = xcalloc(1, cursor_size);
		value = xcalloc(1, m.stride);
	} else {
		__u32 size = (__u32)batch_size;
		if (m.max_entries > 0 && size > m.max_entries)
			size = m.max_entries;
		batch_alloc(&m, &b, size);
		b.cursor = xcalloc(1, (cursor_size + 7) & ~(size_t)7);
	}

	for (long i = 0; i < rounds; i++) {
		uint64_t t0 = now_ns();
		struct result r = perkey ? sweep_perkey(&m, prev, next, value) : sweep_batch(&m, &b);
		uint64_t t1 = now_ns();
		printf("{\"ns\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"sum\":%" PRIu64 "}\n", t1 - t0, r.entries, r.sum);
	}
	fflush(stdout);
	close(m.fd);
	return 0;
}
