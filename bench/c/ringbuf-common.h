// What bench/c/ringbuf-consume.c and ringbuf-produce.c share: the producer's control map entry
// (bench/c/ringbuf-produce.bpf.c's struct ctl), the clocks they report, and how they fail.
#ifndef RINGBUF_COMMON_H
#define RINGBUF_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct ctl {
	uint32_t count;
	uint32_t pad;
	uint64_t seq;
	uint64_t failed;
	uint64_t runs;
};

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/** Each program defines PROG, its name in the messages. */
static inline void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(err));
	exit(1);
}

#endif
