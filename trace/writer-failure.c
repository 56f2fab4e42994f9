/*
 * The failure record every trace writer keeps (the run.db writer thread,
 * each pcap writer): the first error with its message, how many writes
 * failed and how much was not written.  The first failure is logged; the
 * rest only counted, so a full disk is one log line, not one a batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#include "trace/internal.h"

void trace_failure_note(struct trace_failure *f, int err, uint64_t lost, const char *fmt, ...)
{
    f->failures++;
    f->lost += lost;
    if (f->err) {
        return;
    }
    f->err = err > 0 ? err : EIO;
    va_list ap;
    va_start(ap, fmt);
    f->msg = fl_xvasprintf(fmt, ap);
    va_end(ap);
    fl_log(FL_LOG_ERROR, "trace", "%s (later failures are counted, not logged)", f->msg);
}

bool trace_failure_get(const struct trace_failure *f, const char *unit, struct fl_error **errp)
{
    if (!f->err) {
        return true;
    }
    fl_error_setf(errp, f->err, "%s; %" PRIu64 " %s not written, %" PRIu64 " failed write%s",
                  f->msg, f->lost, unit, f->failures, f->failures == 1 ? "" : "s");
    return false;
}

bool trace_failure_get_locked(const struct trace_failure *f, pthread_mutex_t *mu, const char *unit,
                              struct fl_error **errp)
{
    pthread_mutex_lock(mu);
    bool ok = trace_failure_get(f, unit, errp);
    pthread_mutex_unlock(mu);
    return ok;
}

void trace_failure_free(struct trace_failure *f)
{
    free(f->msg);
    *f = (struct trace_failure){0};
}
