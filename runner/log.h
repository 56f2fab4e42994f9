/*
 * runner/log.h — the run's clock and its event log: the leaf of runner/.
 *
 * Every other runner file reads the clock and writes log lines; this file
 * calls none of them (Open vSwitch lib/vlog.c: a leaf with a table of
 * destinations that never calls up).  events.log and the live view are
 * sinks registered here; the timeline learns that a hold began or ended
 * through the clock's `changed` hook.
 *
 *   timeline time = mono - t0 - held          (holds: waits, foreground execs)
 *   log line      = "[+12.000s] kind      text"  (boot-relative before t0)
 */
#ifndef FL_RUNNER_LOG_H
#define FL_RUNNER_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct rn_clock {
    struct fl_loop *loop;
    int64_t run_start_ns; /* mono when the run began (before images) */
    int64_t t0;           /* mono at time zero; 0 until then */
    int64_t held_ns;      /* timeline time lost to holds so far */
    int64_t hold_start;   /* mono when the current hold began */
    unsigned holds;       /* waits / foreground execs holding the timeline */
    /* Called when the first hold begins and when the last one ends (may be
     * NULL): the timeline disarms or reschedules its timer. */
    void (*changed)(void *arg);
    void *changed_arg;
};

/* Timeline time: 0 before time zero. */
int64_t rn_clock_now(const struct rn_clock *clock);
void rn_clock_hold(struct rn_clock *clock);
/* Ends one hold; a release without a hold is ignored. */
void rn_clock_release(struct rn_clock *clock);

/* A destination of log lines (one line, no newline). */
typedef void rn_log_sink(void *arg, const char *line);

#define RN_LOG_MAX_SINKS 4

struct rn_log {
    const struct rn_clock *clock;
    /* While an event is applied: its planned timeline time, which is what
     * its lines show (so two runs with one seed log the same lines);
     * INT64_MIN otherwise (lines show the timeline clock). */
    int64_t at;
    struct {
        rn_log_sink *fn;
        void *arg;
    } sinks[RN_LOG_MAX_SINKS];
    size_t n_sinks;
};

void rn_log_init(struct rn_log *log, const struct rn_clock *clock);
/* Sinks live as long as the log (events.log, the view); at most
 * RN_LOG_MAX_SINKS, more are ignored. */
void rn_log_add_sink(struct rn_log *log, rn_log_sink *fn, void *arg);
/* A line to every sink: "[+12.000s] kind      text".  The text is shown
 * as fl_text_terminal() makes it: whatever a guest put into it (a check's
 * output, a message) reaches no terminal and no log as a control. */
void rn_log(struct rn_log *log, const char *kind, const char *fmt, ...) FL_PRINTF(3, 4);

#endif /* FL_RUNNER_LOG_H */
