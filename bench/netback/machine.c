/*
 * What the machine itself costs, measured in the same run as netback, so
 * that the two figures netback cannot set alone can be read against it:
 *
 * - Page cache: CPU per 3 KB written into a new file in the trace
 *   directory (the traced 1500-byte case writes 3 KB per frame, the
 *   sender's pcap and the receiver's), and per 3 KB overwriting the same
 *   file.  On a VM whose host takes back freed guest memory (free page
 *   reporting), a new page costs a host fault on first touch; the gap
 *   between the two figures is that.
 * - Stalls: one thread per CPU (at most 4) spins on the clock; every
 *   millisecond-long window keeps the longest gap any of them saw.  A gap
 *   is time the thread did not run: the guest kernel, other tenants of the
 *   host.  A frame due in a window with a 150 us gap is late by up to that
 *   whatever netback does, so the share of such windows bounds the delay
 *   error's tail from below.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/netback/machine.h"
#include "core/core.h"

int64_t bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * FL_NS_PER_SEC + ts.tv_nsec;
}

#define PC_CHUNK ((size_t)256 << 10)

/* CPU ns per 3 KB of writing `total` bytes in 256 KiB writes at `fd`'s
 * offset 0; -1 if a write fails. */
static double write_cost(int fd, const uint8_t *chunk, size_t total)
{
    int64_t t0 = bench_thread_cpu_ns();
    for (size_t off = 0; off < total; off += PC_CHUNK) {
        if (pwrite(fd, chunk, PC_CHUNK, (off_t)off) != (ssize_t)PC_CHUNK) {
            return -1;
        }
    }
    return (double)(bench_thread_cpu_ns() - t0) * 3072.0 / (double)total;
}

int machine_pagecache(const char *dir, size_t total, struct machine_pagecache *out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/nb-bench-pagecache-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    unlink(path);
    uint8_t *chunk = malloc(PC_CHUNK);
    if (!chunk) {
        close(fd);
        return -1;
    }
    memset(chunk, 0xa5, PC_CHUNK);
    total = total / PC_CHUNK * PC_CHUNK;
    out->fresh_ns = write_cost(fd, chunk, total);
    out->overwrite_ns = write_cost(fd, chunk, total);
    free(chunk);
    close(fd);
    return out->fresh_ns < 0 || out->overwrite_ns < 0 ? -1 : 0;
}

struct spinner {
    int cpu;
    int64_t start, windows, window_ns;
    int64_t *max_gap; /* per window */
    pthread_t thread;
};

static void *spin_main(void *arg)
{
    struct spinner *s = arg;
    /* A normal thread, also under --rt: a SCHED_FIFO thread that never
     * sleeps is throttled by the kernel, which is not the machine's doing. */
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(s->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    int64_t end = s->start + s->windows * s->window_ns;
    int64_t prev = fl_clock_mono_ns();
    while (prev < s->start) {
        prev = fl_clock_mono_ns();
    }
    while (prev < end) {
        int64_t now = fl_clock_mono_ns();
        int64_t w = (now - s->start) / s->window_ns;
        if (w < s->windows && now - prev > s->max_gap[w]) {
            s->max_gap[w] = now - prev;
        }
        prev = now;
    }
    return NULL;
}

int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int machine_stalls(int64_t duration_ns, int64_t threshold_ns, struct machine_stalls *out)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)FL_MAX(1, FL_MIN(ncpu, 4));
    const int64_t window = FL_NS_PER_MS;
    int64_t windows = FL_MAX(duration_ns / window, 1);
    struct spinner sp[4];
    int64_t start = fl_clock_mono_ns() + 10 * FL_NS_PER_MS;
    int started = 0;
    for (int i = 0; i < n; i++) {
        sp[i] = (struct spinner){.cpu = i, .start = start, .windows = windows, .window_ns = window};
        sp[i].max_gap = calloc((size_t)windows, sizeof(int64_t));
        if (!sp[i].max_gap || pthread_create(&sp[i].thread, NULL, spin_main, &sp[i]) != 0) {
            free(sp[i].max_gap);
            break;
        }
        started++;
    }
    if (started == 0) {
        return -1;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(sp[i].thread, NULL);
    }
    /* Window by window, the longest gap of any spinner. */
    int64_t *gap = sp[0].max_gap;
    for (int i = 1; i < started; i++) {
        for (int64_t w = 0; w < windows; w++) {
            gap[w] = FL_MAX(gap[w], sp[i].max_gap[w]);
        }
        free(sp[i].max_gap);
    }
    *out = (struct machine_stalls){.threads = started, .windows = windows};
    for (int64_t w = 0; w < windows; w++) {
        out->over += gap[w] > threshold_ns;
    }
    qsort(gap, (size_t)windows, sizeof *gap, bench_cmp_i64);
    out->p50_us = (double)gap[windows / 2] / 1e3;
    out->p99_us = (double)gap[(windows - 1) * 99 / 100] / 1e3;
    out->max_us = (double)gap[windows - 1] / 1e3;
    free(gap);
    return 0;
}
