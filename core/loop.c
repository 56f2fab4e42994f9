/*
 * The event loop: one epoll set, one timerfd for every timer, one
 * signalfd for every signal.
 *
 *   fl_loop_run_once()
 *     1. sync the timerfd to the earliest timer (TFD_TIMER_ABSTIME on
 *        CLOCK_MONOTONIC) -- done lazily here, so arming a timer inside a
 *        callback costs no syscall
 *     2. epoll_wait
 *     3. dispatch fd events (a registration deleted by an earlier callback
 *        in the same batch is skipped: epoll data carries fd + generation)
 *     4. fire every timer due now (timers live in core's one binary
 *        min-heap, core/heap.c, keyed by deadline, then arming order)
 *
 * With a manual clock (tests) the timerfd is never armed: due timers fire
 * whenever the caller runs an iteration after advancing the clock.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/core.h"

struct fd_reg {
    fl_fd_cb *cb;
    void *arg;
    uint32_t gen;
    bool active;
};

struct fl_timer {
    struct fl_loop *loop;
    fl_timer_cb *cb;
    void *arg;
    int64_t deadline;
    size_t heap_index; /* SIZE_MAX when not in the heap */
};

struct sig_reg {
    fl_signal_cb *cb;
    void *arg;
};

struct fl_loop {
    struct fl_clock *clock;
    int epfd;
    int tfd;
    int sfd;
    sigset_t sigmask;
    struct sig_reg sigs[_NSIG];

    struct fd_reg *fds;
    size_t fds_alloc;

    struct fl_heap heap; /* of struct fl_timer, by (deadline, arming order) */
    uint64_t next_seq;
    int64_t tfd_deadline; /* what the timerfd is armed for; INT64_MAX: disarmed */

    bool stopped;
};

/* ---- timer heap (core/heap.c) ---- */

static void timer_moved(void *data, size_t index)
{
    ((struct fl_timer *)data)->heap_index = index;
}

static struct fl_timer *heap_first(const struct fl_loop *loop)
{
    const struct fl_heap_entry *e = fl_heap_top(&loop->heap);
    return e ? e->data : NULL;
}

static void heap_remove(struct fl_loop *loop, struct fl_timer *t)
{
    fl_heap_remove(&loop->heap, t->heap_index);
    t->heap_index = SIZE_MAX;
}

/* ---- fds ---- */

static uint64_t fd_key(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

int fl_loop_add_fd(struct fl_loop *loop, int fd, uint32_t events, fl_fd_cb *cb, void *arg)
{
    if (fd < 0) {
        return -EBADF;
    }
    size_t old = loop->fds_alloc;
    loop->fds = fl_xgrow(loop->fds, &loop->fds_alloc, (size_t)fd + 1, sizeof *loop->fds);
    if (loop->fds_alloc > old) {
        memset(loop->fds + old, 0, (loop->fds_alloc - old) * sizeof *loop->fds);
    }
    struct fd_reg *r = &loop->fds[fd];
    if (r->active) {
        return -EEXIST;
    }
    r->gen++;
    struct epoll_event ev = {.events = events, .data.u64 = fd_key(fd, r->gen)};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        return -errno;
    }
    r->cb = cb;
    r->arg = arg;
    r->active = true;
    return 0;
}

int fl_loop_mod_fd(struct fl_loop *loop, int fd, uint32_t events)
{
    if (fd < 0 || (size_t)fd >= loop->fds_alloc || !loop->fds[fd].active) {
        return -ENOENT;
    }
    struct epoll_event ev = {.events = events, .data.u64 = fd_key(fd, loop->fds[fd].gen)};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int fl_loop_del_fd(struct fl_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->fds_alloc || !loop->fds[fd].active) {
        return -ENOENT;
    }
    loop->fds[fd].active = false;
    /* The fd may already be closed by the caller; that removed it from the
     * epoll set anyway. */
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT) {
        return -errno;
    }
    return 0;
}

/* ---- timers ---- */

struct fl_timer *fl_timer_create(struct fl_loop *loop, fl_timer_cb *cb, void *arg)
{
    struct fl_timer *t = fl_xcalloc(1, sizeof *t);
    t->loop = loop;
    t->cb = cb;
    t->arg = arg;
    t->deadline = INT64_MAX;
    t->heap_index = SIZE_MAX;
    return t;
}

void fl_timer_arm(struct fl_timer *t, int64_t deadline_ns)
{
    struct fl_loop *loop = t->loop;
    if (t->heap_index != SIZE_MAX) {
        heap_remove(loop, t);
    }
    t->deadline = deadline_ns;
    fl_heap_push(&loop->heap, deadline_ns, loop->next_seq++, t);
}

void fl_timer_arm_in(struct fl_timer *t, int64_t delay_ns)
{
    fl_timer_arm(t, fl_loop_now(t->loop) + delay_ns);
}

void fl_timer_disarm(struct fl_timer *t)
{
    if (t->heap_index != SIZE_MAX) {
        heap_remove(t->loop, t);
    }
    t->deadline = INT64_MAX;
}

bool fl_timer_armed(const struct fl_timer *t)
{
    return t->heap_index != SIZE_MAX;
}

int64_t fl_timer_deadline(const struct fl_timer *t)
{
    return t->heap_index != SIZE_MAX ? t->deadline : INT64_MAX;
}

void fl_timer_destroy(struct fl_timer *t)
{
    if (t) {
        fl_timer_disarm(t);
        free(t);
    }
}

static void sync_timerfd(struct fl_loop *loop)
{
    if (loop->clock) {
        return;
    }
    const struct fl_timer *first = heap_first(loop);
    int64_t want = first ? first->deadline : INT64_MAX;
    if (want == loop->tfd_deadline) {
        return;
    }
    struct itimerspec its = {0};
    if (want != INT64_MAX) {
        int64_t w = want > 0 ? want : 1; /* 0 would disarm */
        its.it_value.tv_sec = w / FL_NS_PER_SEC;
        its.it_value.tv_nsec = w % FL_NS_PER_SEC;
    }
    if (timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
        loop->tfd_deadline = want;
    }
}

static int fire_timers(struct fl_loop *loop)
{
    int64_t now = fl_loop_now(loop);
    /* Bound the round so a callback re-arming itself in the past cannot
     * starve the fds. */
    size_t budget = loop->heap.len + 64;
    int fired = 0;
    struct fl_timer *t;
    while ((t = heap_first(loop)) && t->deadline <= now && budget--) {
        heap_remove(loop, t);
        t->deadline = INT64_MAX;
        fired++;
        t->cb(loop, t, t->arg); /* may free t */
    }
    return fired;
}

static void on_timerfd(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    uint64_t expirations;
    ssize_t n FL_UNUSED = read(fd, &expirations, sizeof expirations);
    loop->tfd_deadline = INT64_MAX; /* a fired ABSTIME timer is disarmed */
}

/* ---- signals ---- */

int fl_loop_poll_signals(struct fl_loop *loop)
{
    struct signalfd_siginfo si;
    int n = 0;
    while (loop->sfd >= 0 && read(loop->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        n++;
        if (si.ssi_signo < _NSIG && loop->sigs[si.ssi_signo].cb) {
            loop->sigs[si.ssi_signo].cb(loop, (int)si.ssi_signo, loop->sigs[si.ssi_signo].arg);
        }
    }
    return n;
}

static void on_signalfd(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    fl_loop_poll_signals(loop);
}

int fl_loop_add_signal(struct fl_loop *loop, int signo, fl_signal_cb *cb, void *arg)
{
    if (signo <= 0 || signo >= _NSIG) {
        return -EINVAL;
    }
    sigaddset(&loop->sigmask, signo);
    if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0) {
        return -errno;
    }
    int sfd = signalfd(loop->sfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        return -errno;
    }
    if (loop->sfd < 0) {
        loop->sfd = sfd;
        int r = fl_loop_add_fd(loop, sfd, EPOLLIN, on_signalfd, NULL);
        if (r < 0) {
            return r;
        }
    }
    loop->sigs[signo].cb = cb;
    loop->sigs[signo].arg = arg;
    return 0;
}

/* ---- the loop ---- */

struct fl_loop *fl_loop_create(struct fl_clock *clock, struct fl_error **errp)
{
    struct fl_loop *loop = fl_xcalloc(1, sizeof *loop);
    loop->clock = clock;
    loop->tfd = loop->sfd = -1;
    loop->tfd_deadline = INT64_MAX;
    fl_heap_init(&loop->heap, timer_moved);
    sigemptyset(&loop->sigmask);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        fl_error_setf_errno(errp, errno, "epoll_create1");
        free(loop);
        return NULL;
    }
    loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (loop->tfd < 0) {
        fl_error_setf_errno(errp, errno, "timerfd_create");
        fl_loop_destroy(loop);
        return NULL;
    }
    int r = fl_loop_add_fd(loop, loop->tfd, EPOLLIN, on_timerfd, NULL);
    if (r < 0) {
        fl_error_setf_errno(errp, -r, "epoll_ctl(timerfd)");
        fl_loop_destroy(loop);
        return NULL;
    }
    return loop;
}

void fl_loop_destroy(struct fl_loop *loop)
{
    if (!loop) {
        return;
    }
    for (size_t i = 0; i < loop->heap.len; i++) {
        ((struct fl_timer *)loop->heap.v[i].data)->heap_index = SIZE_MAX;
    }
    if (loop->sfd >= 0) {
        close(loop->sfd);
        sigprocmask(SIG_UNBLOCK, &loop->sigmask, NULL);
    }
    if (loop->tfd >= 0) {
        close(loop->tfd);
    }
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
    fl_heap_free(&loop->heap);
    free(loop->fds);
    free(loop);
}

int64_t fl_loop_now(const struct fl_loop *loop)
{
    return fl_clock_now(loop->clock);
}

int fl_loop_run_once(struct fl_loop *loop, int timeout_ms)
{
    sync_timerfd(loop);
    const struct fl_timer *first = heap_first(loop);
    if (loop->clock && first && first->deadline <= fl_loop_now(loop)) {
        timeout_ms = 0;
    }
    struct epoll_event events[64];
    int n = epoll_wait(loop->epfd, events, (int)FL_ARRAY_LEN(events), timeout_ms);
    if (n < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    int ran = 0;
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)events[i].data.u64;
        uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
        if ((size_t)fd >= loop->fds_alloc) {
            continue;
        }
        struct fd_reg *r = &loop->fds[fd];
        if (!r->active || r->gen != gen) {
            continue;
        }
        r->cb(loop, fd, events[i].events, r->arg);
        ran++;
    }
    ran += fire_timers(loop);
    return ran;
}

int fl_loop_run(struct fl_loop *loop)
{
    loop->stopped = false;
    while (!loop->stopped) {
        int r = fl_loop_run_once(loop, -1);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

void fl_loop_stop(struct fl_loop *loop)
{
    loop->stopped = true;
}

bool fl_loop_stopped(const struct fl_loop *loop)
{
    return loop->stopped;
}
