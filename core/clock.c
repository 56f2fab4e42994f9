/* Monotonic and manual clocks. */
#include <stdlib.h>
#include <time.h>

#include "core/core.h"

struct fl_clock {
    int64_t now_ns;
};

int64_t fl_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * FL_NS_PER_SEC + ts.tv_nsec;
}

int64_t fl_clock_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * FL_NS_PER_SEC + ts.tv_nsec;
}

struct fl_clock *fl_clock_manual_create(int64_t start_ns)
{
    struct fl_clock *c = fl_xcalloc(1, sizeof *c);
    c->now_ns = start_ns;
    return c;
}

void fl_clock_manual_advance(struct fl_clock *clock, int64_t delta_ns)
{
    clock->now_ns += delta_ns;
}

void fl_clock_manual_set(struct fl_clock *clock, int64_t now_ns)
{
    clock->now_ns = now_ns;
}

void fl_clock_destroy(struct fl_clock *clock)
{
    free(clock);
}

int64_t fl_clock_now(const struct fl_clock *clock)
{
    return clock ? clock->now_ns : fl_clock_mono_ns();
}
