/* What the machine itself costs, measured beside netback in the same run
 * (see machine.c). */
#ifndef FL_BENCH_NETBACK_MACHINE_H
#define FL_BENCH_NETBACK_MACHINE_H

#include <stddef.h>
#include <stdint.h>

struct machine_pagecache {
    double fresh_ns;     /* CPU per 3 KB written into new pages */
    double overwrite_ns; /* CPU per 3 KB rewriting the same pages */
};

/* Writes `total` bytes into a new (unlinked) file in `dir`, then again over
 * them.  0, or -1 if the file could not be made or written. */
int machine_pagecache(const char *dir, size_t total, struct machine_pagecache *out);

struct machine_stalls {
    int threads;                   /* spinners (one per CPU, at most 4) */
    long windows;                  /* 1 ms windows observed */
    long over;                     /* windows whose longest gap exceeded the threshold */
    double p50_us, p99_us, max_us; /* of the windows' longest gaps */
};

/* Spins one thread per CPU for `duration_ns`, keeping per 1 ms window the
 * longest time any of them did not run.  0, or -1 if no thread started. */
int machine_stalls(int64_t duration_ns, int64_t threshold_ns, struct machine_stalls *out);

/* Shared by the benchmark's files: this thread's CPU time, and a qsort
 * comparator for int64_t. */
int64_t bench_thread_cpu_ns(void);
int bench_cmp_i64(const void *a, const void *b);

#endif
