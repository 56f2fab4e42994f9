/*
 * The life of trace's writer threads (the run.db writer, each pcap
 * writer): started at a lower priority, waited for by flushes, told to
 * stop and joined at close.  The owner's mutex guards `stopping` and the
 * progress counters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "trace/internal.h"

static void lower_priority(void)
{
    /* Writers are deferred work behind deep queues: they should run when
     * a CPU is free, not preempt the event loop (or a guest's vCPU) each
     * time a batch is ready.  At nice 0 they did, on two cores: the
     * netback benchmark with tracing ran at 0.38-0.40x of the raw relay
     * for 1500-byte frames, 0.70-0.77x at +10 (0.69-0.84 / 0.89-0.94 at
     * 64 bytes).  A writer starved for long enough only makes its
     * producers wait (counted), nothing is lost. */
    pid_t tid = gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0) {
        setpriority(PRIO_PROCESS, (id_t)tid, FL_MIN(nice + TRACE_WRITER_NICE, 19));
    }
}

struct start {
    void *(*main)(void *);
    void *arg;
};

static void *thread_main(void *arg)
{
    struct start s = *(struct start *)arg;
    free(arg);
    lower_priority();
    return s.main(s.arg);
}

bool trace_thread_start(struct trace_thread *t, void *(*main)(void *), void *arg, const char *name)
{
    struct start *s = fl_xmalloc(sizeof(*s));
    *s = (struct start){main, arg};
    if (pthread_create(&t->thread, NULL, thread_main, s) != 0) {
        free(s);
        return false;
    }
    t->started = true;
    pthread_setname_np(t->thread, name);
    return true;
}

int trace_thread_wait(const struct trace_thread *t, pthread_mutex_t *mu, pthread_cond_t *progress,
                      const uint64_t *done, uint64_t target, const struct trace_failure *f)
{
    while (*done < target && t->started) {
        pthread_cond_wait(progress, mu);
    }
    return f->err ? -f->err : 0;
}

void trace_thread_stop(struct trace_thread *t, pthread_mutex_t *mu, pthread_cond_t *wake)
{
    if (!t->started) {
        return;
    }
    pthread_mutex_lock(mu);
    t->stopping = true;
    pthread_cond_signal(wake);
    pthread_mutex_unlock(mu);
    pthread_join(t->thread, NULL);
    t->started = false;
}
