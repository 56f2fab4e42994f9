/* The run's clock and its event log (runner/log.h): the leaf of runner/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/log.h"

int64_t rn_clock_now(const struct rn_clock *clock)
{
    if (!clock->t0) {
        return 0;
    }
    int64_t now = fl_loop_now(clock->loop);
    int64_t held = clock->held_ns + (clock->holds ? now - clock->hold_start : 0);
    return now - clock->t0 - held;
}

void rn_clock_hold(struct rn_clock *clock)
{
    if (clock->holds++ == 0) {
        clock->hold_start = fl_loop_now(clock->loop);
    }
    if (clock->changed) {
        clock->changed(clock->changed_arg);
    }
}

void rn_clock_release(struct rn_clock *clock)
{
    if (clock->holds == 0) {
        return;
    }
    if (--clock->holds == 0) {
        clock->held_ns += fl_loop_now(clock->loop) - clock->hold_start;
        if (clock->changed) {
            clock->changed(clock->changed_arg);
        }
    }
}

void rn_log_init(struct rn_log *log, const struct rn_clock *clock)
{
    memset(log, 0, sizeof *log);
    log->clock = clock;
    log->at = INT64_MIN;
}

void rn_log_add_sink(struct rn_log *log, rn_log_sink *fn, void *arg)
{
    if (log->n_sinks < RN_LOG_MAX_SINKS) {
        log->sinks[log->n_sinks].fn = fn;
        log->sinks[log->n_sinks].arg = arg;
        log->n_sinks++;
    }
}

void rn_log(struct rn_log *log, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = fl_xvasprintf(fmt, ap);
    va_end(ap);
    char stamp[40];
    const struct rn_clock *clock = log->clock;
    if (clock->t0) {
        int64_t t = log->at != INT64_MIN ? log->at : rn_clock_now(clock);
        snprintf(stamp, sizeof stamp, "%c%lld.%03llds", t < 0 ? '-' : '+',
                 (long long)(llabs(t) / FL_NS_PER_SEC),
                 (long long)(llabs(t) % FL_NS_PER_SEC / FL_NS_PER_MS));
    } else {
        int64_t t = fl_clock_mono_ns() - clock->run_start_ns;
        snprintf(stamp, sizeof stamp, "boot+%lld.%03llds", (long long)(t / FL_NS_PER_SEC),
                 (long long)(t % FL_NS_PER_SEC / FL_NS_PER_MS));
    }
    struct fl_buf line = {0};
    fl_buf_printf(&line, "[%s] %-9s ", stamp, kind);
    fl_text_terminal(&line, text, strlen(text));
    for (size_t i = 0; i < log->n_sinks; i++) {
        log->sinks[i].fn(log->sinks[i].arg, line.data);
    }
    fl_buf_free(&line);
    free(text);
}
