/*
 * Replaying one recorded segment (hv/record.h): QEMU with the segment's
 * replay command line in a working directory holding the decompressed
 * log and fresh copies of the disks, driven over QMP:
 *
 *   qemu -icount rr=replay ... -S ─▶ replay-break <icount> ─▶ cont
 *        ─▶ (query-replay every second: is the count advancing?)
 *        ─▶ STOP at the break ─▶ query-replay ─▶ [at_stop] ─▶ quit
 *
 * The console and agent bytes the guest wrote come from the chardevs'
 * logfiles.  A replay that stops advancing is reported as stalled, never
 * waited on forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/internal.h"
#include "hv/record.h"

#define DEFAULT_STALL_NS (60 * FL_NS_PER_SEC)
#define POLL_MS          200
#define QUERY_EVERY_NS   FL_NS_PER_SEC

void hv_replay_result_clear(struct hv_replay_result *r)
{
    if (r) {
        free(r->console);
        free(r->agent);
        free(r->qemu_stderr);
        memset(r, 0, sizeof *r);
    }
}

struct qmp {
    int fd;
    struct fl_buf in;
    bool eof;
};

/* Next complete line as JSON, waiting up to timeout_ms (0: only what is
 * already there).  NULL: none yet (or EOF: q->eof). */
static struct fl_json *qmp_next(struct qmp *q, int timeout_ms, struct fl_error **errp)
{
    for (;;) {
        char *nl = q->in.data ? memchr(q->in.data, '\n', q->in.size) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - q->in.data);
            struct fl_json *j = fl_json_parse(q->in.data, len, errp);
            memmove(q->in.data, nl + 1, q->in.size - len - 1);
            q->in.size -= len + 1;
            q->in.data[q->in.size] = '\0';
            if (!j) {
                fl_error_prepend(errp, "QMP: ");
            }
            return j;
        }
        if (q->eof) {
            return NULL;
        }
        struct pollfd p = {.fd = q->fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return NULL;
        }
        char buf[16384];
        ssize_t n = recv(q->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            q->eof = true;
            return NULL;
        }
        fl_buf_append(&q->in, buf, (size_t)n);
        timeout_ms = 0;
    }
}

static bool qmp_send(struct qmp *q, const char *line)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = send(q->fd, line + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        off += (size_t)w;
    }
    return true;
}

struct replay {
    const struct hv_replay_opts *o;
    struct hv_rr_segment seg;
    char *work;
    bool work_owned;
    pid_t pid;
    struct qmp q;
    uint64_t target;
    uint64_t last_icount;
    bool stopped;
    int console_fd;
    off_t console_off;
};

/* Copies console bytes that appeared since the last call to o->console_fd. */
static void pump_console(struct replay *r)
{
    if (r->o->console_fd < 0) {
        return;
    }
    if (r->console_fd < 0) {
        char *p = fl_xasprintf("%s/" HV_RR_CONSOLE_FILE, r->work);
        r->console_fd = open(p, O_RDONLY | O_CLOEXEC);
        free(p);
        if (r->console_fd < 0) {
            return;
        }
    }
    char buf[65536];
    for (;;) {
        ssize_t n = pread(r->console_fd, buf, sizeof buf, r->console_off);
        if (n <= 0) {
            return;
        }
        r->console_off += n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(r->o->console_fd, buf + off, (size_t)(n - off));
            if (w <= 0) {
                return;
            }
            off += w;
        }
    }
}

/* Waits for the answer to the last command, handling events on the way.
 * *ret gets the "return" member (caller frees the message via *msgp). */
static bool qmp_wait_return(struct replay *r, int64_t timeout_ns, struct fl_json **msgp,
                            struct fl_error **errp)
{
    int64_t deadline = fl_clock_mono_ns() + timeout_ns;
    for (;;) {
        int64_t left = deadline - fl_clock_mono_ns();
        if (left <= 0) {
            fl_error_setf(errp, ETIMEDOUT, "QMP: QEMU did not answer within %.0f s",
                          (double)timeout_ns / 1e9);
            return false;
        }
        struct fl_json *m = qmp_next(&r->q, (int)FL_MIN(left / FL_NS_PER_MS + 1, POLL_MS), errp);
        pump_console(r);
        if (!m) {
            if (r->q.eof) {
                fl_error_setf(errp, EPIPE, "QMP: QEMU closed the connection");
                return false;
            }
            if (errp && *errp) {
                return false;
            }
            continue;
        }
        const char *ev = fl_json_get_str(m, "event");
        if (ev) {
            if (!strcmp(ev, "STOP")) {
                r->stopped = true;
            }
            fl_json_free(m);
            continue;
        }
        const struct fl_json *e = fl_json_get(m, "error");
        if (e) {
            const char *desc = fl_json_get_str(e, "desc");
            fl_error_setf(errp, EIO, "QMP error: %s", desc ? desc : "(no description)");
            fl_json_free(m);
            return false;
        }
        if (fl_json_get(m, "return") || fl_json_get(m, "QMP")) {
            if (msgp) {
                *msgp = m;
            } else {
                fl_json_free(m);
            }
            return true;
        }
        fl_json_free(m);
    }
}

static bool query_icount(struct replay *r, uint64_t *icount, struct fl_error **errp)
{
    if (!qmp_send(&r->q, "{\"execute\":\"query-replay\"}\n")) {
        fl_error_setf(errp, EPIPE, "QMP: QEMU closed the connection");
        return false;
    }
    struct fl_json *m = NULL;
    if (!qmp_wait_return(r, 10 * FL_NS_PER_SEC, &m, errp)) {
        return false;
    }
    const struct fl_json *ic = fl_json_get(fl_json_get(m, "return"), "icount");
    bool ok = ic && ic->type == FL_JSON_NUM;
    if (ok) {
        *icount = (uint64_t)ic->num;
    } else {
        fl_error_setf(errp, EPROTO, "QMP: query-replay answered without an icount");
    }
    fl_json_free(m);
    return ok;
}

static char *read_tail(const char *path, size_t max)
{
    size_t size = 0;
    char *t = fl_read_file(path, &size, NULL);
    if (!t) {
        return fl_xstrdup("");
    }
    if (size > max) {
        memmove(t, t + size - max, max);
        t[max] = '\0';
    }
    /* Every replay of a networked node warns that its hub has no host
     * network (by design: the log feeds the frames); that is not news. */
    struct fl_buf b = {0};
    for (char *save = NULL, *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strstr(l, "is not connected to host network")) {
            fl_buf_printf(&b, "%s%s", b.size ? "\n" : "", l);
        }
    }
    free(t);
    return b.data ? fl_buf_steal(&b) : fl_xstrdup("");
}

static bool start_qemu(struct replay *r, struct fl_error **errp)
{
    struct hv_rr_segment *s = &r->seg;
    size_t n0 = hv_rr_argv_len((const char *const *)s->replay_argv);
    char **argv = fl_xcalloc(n0 + r->o->n_extra + 1, sizeof *argv);
    for (size_t i = 0; i < n0; i++) {
        argv[i] = s->replay_argv[i];
    }
    for (size_t i = 0; i < r->o->n_extra; i++) {
        argv[n0 + i] = (char *)r->o->extra[i];
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        fl_error_setf_errno(errp, errno, "socketpair");
        free(argv);
        return false;
    }
    char *errfile = fl_xasprintf("%s/qemu.err", r->work);
    int errfd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    free(errfile);
    if (errfd < 0) {
        fl_error_setf_errno(errp, errno, "cannot create '%s/qemu.err'", r->work);
        close(sv[0]), close(sv[1]);
        free(argv);
        return false;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fl_error_setf_errno(errp, errno, "fork");
        close(sv[0]), close(sv[1]), close(errfd);
        free(argv);
        return false;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        setpgid(0, 0);
        int q = fcntl(sv[1], F_DUPFD, 10), e = fcntl(errfd, F_DUPFD, 10);
        int nul = open("/dev/null", O_RDONLY);
        if (q < 0 || e < 0 || nul < 0 || chdir(r->work) < 0 || dup2(nul, 0) < 0 || dup2(e, 1) < 0 ||
            dup2(e, 2) < 0 || dup2(q, 3) < 0) {
            _exit(126);
        }
        syscall(SYS_close_range, 4, ~0U, 0);
        execvp(argv[0], argv);
        dprintf(2, "faultline: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    close(sv[1]);
    close(errfd);
    r->pid = pid;
    r->q.fd = sv[0];
    return true;
}

/* Waits for QEMU to exit (kills it after timeout_ns); its wait status. */
static int reap(struct replay *r, int64_t timeout_ns)
{
    if (r->pid <= 0) {
        return 0;
    }
    int64_t deadline = fl_clock_mono_ns() + timeout_ns;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(r->pid, &status, WNOHANG);
        if (w == r->pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (fl_clock_mono_ns() >= deadline) {
            kill(-r->pid, SIGKILL);
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    r->pid = 0;
    return status;
}

static bool prepare(struct replay *r, struct fl_error **errp)
{
    const struct hv_replay_opts *o = r->o;
    char *meta = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, o->segment_dir);
    bool ok = hv_rr_segment_read(meta, &r->seg, errp);
    free(meta);
    if (!ok) {
        return false;
    }
    struct hv_rr_segment *s = &r->seg;
    if ((s->end != HV_RR_END_QUIT && s->end != HV_RR_END_EXITED) || !s->has_icount) {
        fl_error_setf(errp, ENOTSUP,
                      "segment ended '%s'%s: not replayable (a recording must end with QMP quit; "
                      "QEMU writes no usable log otherwise)",
                      hv_rr_end_name(s->end), s->has_icount ? "" : " without an instruction count");
        return false;
    }
    r->target = o->until_icount ? o->until_icount : s->icount;
    if (r->target > s->icount) {
        fl_error_setf(errp, EINVAL,
                      "instruction %llu is past the end of the segment (it ran %llu instructions)",
                      (unsigned long long)r->target, (unsigned long long)s->icount);
        return false;
    }
    /* The image must be on this machine (its key names it). */
    for (size_t i = 0; s->replay_argv[i]; i++) {
        if ((!strcmp(s->replay_argv[i], "-kernel") || !strcmp(s->replay_argv[i], "-initrd")) &&
            s->replay_argv[i + 1] && access(s->replay_argv[i + 1], R_OK) < 0) {
            fl_error_setf(errp, ENOENT,
                          "the guest image %s is not on this machine ('%s' is missing): build "
                          "it with the scenario's image (faultline image build) first",
                          s->image_key, s->replay_argv[i + 1]);
            return false;
        }
    }
    if (o->work_dir) {
        r->work = fl_xstrdup(o->work_dir);
        if (!fl_mkdir_p(r->work, 0700, errp)) {
            return false;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        r->work = fl_xasprintf("%s/faultline-replay-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(r->work)) {
            fl_error_setf_errno(errp, errno, "cannot create '%s'", r->work);
            return false;
        }
        r->work_owned = true;
    }
    char *src = fl_xasprintf("%s/%s", o->segment_dir, s->log);
    char *dst = fl_xasprintf("%s/" HV_RR_LOG_FILE, r->work);
    unlink(dst);
    size_t ll = strlen(s->log);
    if (ll > 4 && !strcmp(s->log + ll - 4, ".zst")) {
        ok = hv_rr_zstd(false, src, dst, errp);
    } else {
        ok = hv_rr_copy_file(src, dst, errp);
    }
    free(src);
    free(dst);
    for (size_t i = 0; ok && i < s->n_disks; i++) {
        src = fl_xasprintf("%s/%s", o->segment_dir, s->disks[i].file);
        dst = fl_xasprintf("%s/%s", r->work, s->disks[i].file);
        unlink(dst);
        ok = hv_rr_copy_file(src, dst, errp);
        free(src);
        free(dst);
    }
    const char *outs[] = {HV_RR_CONSOLE_FILE, HV_RR_AGENT_FILE, NULL};
    for (size_t i = 0; outs[i]; i++) {
        char *p = fl_xasprintf("%s/%s", r->work, outs[i]);
        unlink(p);
        free(p);
    }
    return ok;
}

static bool drive(struct replay *r, struct hv_replay_result *res, struct fl_error **errp)
{
    const struct hv_replay_opts *o = r->o;
    struct fl_json *m = NULL;
    /* greeting, capabilities */
    if (!qmp_wait_return(r, 30 * FL_NS_PER_SEC, &m, errp)) {
        return false;
    }
    fl_json_free(m);
    m = NULL;
    if (!qmp_send(&r->q, "{\"execute\":\"qmp_capabilities\"}\n") ||
        !qmp_wait_return(r, 10 * FL_NS_PER_SEC, NULL, errp)) {
        return false;
    }
    char *cmd = fl_xasprintf("{\"execute\":\"replay-break\",\"arguments\":{\"icount\":%llu}}\n",
                             (unsigned long long)r->target);
    bool sent = qmp_send(&r->q, cmd);
    free(cmd);
    if (!sent || !qmp_wait_return(r, 10 * FL_NS_PER_SEC, NULL, errp)) {
        return false;
    }
    if (!qmp_send(&r->q, "{\"execute\":\"cont\"}\n") ||
        !qmp_wait_return(r, 10 * FL_NS_PER_SEC, NULL, errp)) {
        return false;
    }
    int64_t stall_ns = o->stall_ns > 0 ? o->stall_ns : DEFAULT_STALL_NS;
    int64_t last_move = fl_clock_mono_ns(), last_query = 0;
    while (!r->stopped) {
        struct fl_error *e = NULL;
        struct fl_json *ev = qmp_next(&r->q, POLL_MS, &e);
        pump_console(r);
        if (e) {
            fl_error_propagate(errp, e);
            return false;
        }
        if (ev) {
            const char *name = fl_json_get_str(ev, "event");
            if (name && !strcmp(name, "STOP")) {
                r->stopped = true;
            }
            fl_json_free(ev);
            continue;
        }
        if (r->q.eof) {
            fl_error_setf(errp, EIO, "QEMU exited at or after instruction %llu of %llu",
                          (unsigned long long)r->last_icount, (unsigned long long)r->target);
            return false;
        }
        int64_t now = fl_clock_mono_ns();
        if (now - last_query >= QUERY_EVERY_NS) {
            last_query = now;
            uint64_t ic = 0;
            if (!query_icount(r, &ic, errp)) {
                return false;
            }
            if (ic != r->last_icount) {
                r->last_icount = ic;
                last_move = now;
            } else if (now - last_move >= stall_ns && !r->stopped) {
                fl_error_setf(errp, ETIMEDOUT,
                              "the replay stalled: the instruction count stayed at %llu (of "
                              "%llu) for %.0f s",
                              (unsigned long long)ic, (unsigned long long)r->target,
                              (double)stall_ns / 1e9);
                return false;
            }
        }
    }
    if (!query_icount(r, &res->icount, errp)) {
        return false;
    }
    r->last_icount = res->icount;
    res->reached = res->icount == r->target;
    pump_console(r);
    if (o->at_stop) {
        o->at_stop(o->at_stop_arg, res->icount);
    }
    qmp_send(&r->q, "{\"execute\":\"quit\"}\n");
    return true;
}

bool hv_rr_replay(const struct hv_replay_opts *o, struct hv_replay_result *res,
                  struct fl_error **errp)
{
    memset(res, 0, sizeof *res);
    struct replay r = {.o = o, .console_fd = -1, .q = {.fd = -1}};
    struct fl_error *err = NULL;
    bool ok = prepare(&r, &err) && start_qemu(&r, &err);
    if (ok) {
        ok = drive(&r, res, &err);
    }
    if (!ok && !res->icount) {
        res->icount = r.last_icount;
    }
    int status = reap(&r, ok ? 10 * FL_NS_PER_SEC : 0);
    if (r.q.fd >= 0) {
        close(r.q.fd);
    }
    fl_buf_free(&r.q.in);
    if (r.work) {
        pump_console(&r);
        char *p = fl_xasprintf("%s/qemu.err", r.work);
        res->qemu_stderr = read_tail(p, 4096);
        free(p);
        p = fl_xasprintf("%s/" HV_RR_CONSOLE_FILE, r.work);
        res->console = fl_read_file(p, &res->console_size, NULL);
        free(p);
        p = fl_xasprintf("%s/" HV_RR_AGENT_FILE, r.work);
        res->agent = fl_read_file(p, &res->agent_size, NULL);
        free(p);
    }
    if (!res->console) {
        res->console = fl_xstrdup("");
    }
    if (!res->agent) {
        res->agent = fl_xstrdup("");
    }
    if (!ok && err && res->qemu_stderr && *res->qemu_stderr) {
        const char *last = strrchr(res->qemu_stderr, '\n');
        struct fl_error *e2 = NULL;
        fl_error_setf(&e2, err->code, "%s; QEMU said: %s", err->msg,
                      last ? last + 1 : res->qemu_stderr);
        fl_error_free(err);
        err = e2;
    } else if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) != 0) && status != 0) {
        fl_log(FL_LOG_DEBUG, "hv", "replay QEMU ended with status 0x%x", status);
    }
    if (r.console_fd >= 0) {
        close(r.console_fd);
    }
    if (r.work_owned) {
        fl_rm_rf(r.work);
    }
    free(r.work);
    hv_rr_segment_clear(&r.seg);
    if (!ok) {
        fl_error_propagate(errp, err);
    }
    return ok;
}
