/*
 * fl-agent: faultline's guest agent.  A small static program started by
 * the guest's init; it speaks the protocol in hv/proto.h over the
 * virtio-serial port named "org.faultline.agent".
 *
 *   fl-agent DEVICE
 *
 * Why not qemu-guest-agent: its closure (glib, pcre2, ...) adds megabytes
 * to every initramfs (boot time under TCG is dominated by what the kernel
 * unpacks and maps), and its exec is fire-then-poll (guest-exec, then
 * guest-exec-status with base64 output).  This agent is one static binary,
 * answers an exec with one message, runs commands concurrently, and
 * bounds every size it accepts.
 *
 * The bytes from the port come from the controller, but the agent still
 * validates every frame: a bad frame discards the input buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/proto.h"

#define MAX_JOBS       64
#define DRAIN_GRACE_MS 200
#define READ_CHUNK     65536
#define BASE_PATH      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct job {
    bool used;
    uint32_t id;
    pid_t pid; /* 0 once reaped */
    int status;
    int fds[2]; /* stdout, stderr read ends; -1 when closed */
    char *buf[2];
    size_t size[2];
    bool truncated[2];
    int64_t deadline_ms; /* 0 = none */
    int64_t reaped_ms;   /* when the main process was reaped */
    bool timed_out;
};

static int port = -1;
static uint32_t session;
static struct job jobs[MAX_JOBS];
static int sigpipe_fds[2] = {-1, -1};
static uint8_t *inbuf;
static size_t insize;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logmsg(const char *fmt, const char *arg)
{
    /* stderr is the console; keep it short. */
    fprintf(stderr, "fl-agent: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

static void write_all(const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(port, p, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                if (errno == EAGAIN) {
                    struct pollfd pfd = {.fd = port, .events = POLLOUT};
                    poll(&pfd, 1, 1000);
                }
                continue;
            }
            logmsg("write to port failed: %s", strerror(errno));
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void send_frame(struct fl_agent_wr *w)
{
    if (w->bad) {
        logmsg("%s", "out of memory building a reply");
    } else {
        write_all(w->p, w->size);
    }
    fl_agent_wr_free(w);
}

static void send_error(uint32_t id, int err, const char *msg)
{
    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, FL_AGENT_ERROR, id, session);
    fl_agent_wr_u32(&w, (uint32_t)err);
    fl_agent_wr_bytes(&w, msg, (uint32_t)strlen(msg));
    fl_agent_wr_finish(&w, s);
    send_frame(&w);
}

static void on_sigchld(int signo)
{
    (void)signo;
    int saved = errno;
    ssize_t r = write(sigpipe_fds[1], "c", 1);
    (void)r;
    errno = saved;
}

static void job_finish(struct job *j)
{
    for (int k = 0; k < 2; k++) {
        if (j->fds[k] >= 0) {
            close(j->fds[k]);
            j->fds[k] = -1;
        }
    }
    int code = -1, sig = 0;
    if (WIFEXITED(j->status)) {
        code = WEXITSTATUS(j->status);
    } else if (WIFSIGNALED(j->status)) {
        sig = WTERMSIG(j->status);
    }
    uint32_t flags = (j->timed_out ? FL_AGENT_F_TIMED_OUT : 0) |
                     (j->truncated[0] ? FL_AGENT_F_OUT_TRUNCATED : 0) |
                     (j->truncated[1] ? FL_AGENT_F_ERR_TRUNCATED : 0);
    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, FL_AGENT_EXEC_RESULT, j->id, session);
    fl_agent_wr_u32(&w, (uint32_t)code);
    fl_agent_wr_u32(&w, (uint32_t)sig);
    fl_agent_wr_u32(&w, flags);
    fl_agent_wr_bytes(&w, j->buf[0], (uint32_t)j->size[0]);
    fl_agent_wr_bytes(&w, j->buf[1], (uint32_t)j->size[1]);
    fl_agent_wr_finish(&w, s);
    send_frame(&w);
    free(j->buf[0]);
    free(j->buf[1]);
    memset(j, 0, sizeof *j);
    j->fds[0] = j->fds[1] = -1;
}

static void job_read(struct job *j, int k)
{
    char tmp[READ_CHUNK];
    ssize_t n = read(j->fds[k], tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n <= 0) {
        close(j->fds[k]);
        j->fds[k] = -1;
        return;
    }
    size_t keep = (size_t)n;
    if (j->size[k] + keep > FL_AGENT_OUTPUT_MAX) {
        keep = FL_AGENT_OUTPUT_MAX - j->size[k];
        j->truncated[k] = true;
    }
    if (keep) {
        char *p = realloc(j->buf[k], j->size[k] + keep);
        if (!p) {
            j->truncated[k] = true;
            return;
        }
        memcpy(p + j->size[k], tmp, keep);
        j->buf[k] = p;
        j->size[k] += keep;
    }
}

static void reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            return;
        }
        for (int i = 0; i < MAX_JOBS; i++) {
            if (jobs[i].used && jobs[i].pid == pid) {
                jobs[i].pid = 0;
                jobs[i].status = status;
                /* Background children the command left holding its
                 * output pipes get DRAIN_GRACE_MS, then the answer goes
                 * out without them (redirect a daemon's output). */
                jobs[i].reaped_ms = now_ms();
            }
        }
    }
}

static char *dupn(const uint8_t *p, uint32_t n)
{
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static bool has_nul(const uint8_t *p, uint32_t n)
{
    return memchr(p, 0, n) != NULL;
}

static void do_exec(uint32_t id, struct fl_agent_rd *r)
{
    uint32_t timeout_ms = fl_agent_rd_u32(r);
    uint32_t n_env = fl_agent_rd_u32(r);
    if (r->bad || n_env > FL_AGENT_ENV_MAX) {
        send_error(id, EINVAL, "exec: bad environment count");
        return;
    }
    char *env[FL_AGENT_ENV_MAX + 3];
    size_t ne = 0;
    env[ne++] = BASE_PATH;
    env[ne++] = "HOME=/root";
    bool ok = true;
    for (uint32_t i = 0; i < n_env; i++) {
        uint32_t sz;
        const uint8_t *e = fl_agent_rd_bytes(r, 65536, &sz);
        if (!e || has_nul(e, sz) || !memchr(e, '=', sz) || e[0] == '=') {
            ok = false;
            break;
        }
        env[ne++] = dupn(e, sz);
    }
    uint32_t csz = 0;
    const uint8_t *c = ok ? fl_agent_rd_bytes(r, FL_AGENT_CMD_MAX, &csz) : NULL;
    char *cmd = NULL;
    if (!ok || !c || has_nul(c, csz) || !fl_agent_rd_done(r)) {
        send_error(id, EINVAL, "exec: malformed request");
        goto out;
    }
    cmd = dupn(c, csz);
    struct job *j = NULL;
    for (int i = 0; i < MAX_JOBS; i++) {
        if (!jobs[i].used) {
            j = &jobs[i];
            break;
        }
    }
    if (!j || !cmd) {
        send_error(id, EAGAIN, "exec: too many commands running");
        goto out;
    }
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0) {
        send_error(id, errno, "exec: pipe failed");
        goto out;
    }
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        send_error(id, errno, "exec: pipe failed");
        goto out;
    }
    env[ne] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        send_error(id, errno, "exec: fork failed");
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        goto out;
    }
    if (pid == 0) {
        setsid();
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        char *argv[] = {"sh", "-c", cmd, NULL};
        execve("/bin/sh", argv, env);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    memset(j, 0, sizeof *j);
    j->used = true;
    j->id = id;
    j->pid = pid;
    j->fds[0] = po[0];
    j->fds[1] = pe[0];
    j->deadline_ms = timeout_ms ? now_ms() + timeout_ms : 0;
out:
    for (size_t i = 2; i < ne; i++) {
        free(env[i]);
    }
    free(cmd);
}

static void do_clock(uint32_t id, struct fl_agent_rd *r)
{
    uint32_t mode = fl_agent_rd_u32(r);
    int64_t value = fl_agent_rd_i64(r);
    if (!fl_agent_rd_done(r) || mode > 1) {
        send_error(id, EINVAL, "clock: malformed request");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t target;
    int err = 0;
    if (mode == 0) {
        if ((value > 0 && now > INT64_MAX - value) || (value < 0 && now < -value)) {
            err = ERANGE;
            target = now;
        } else {
            target = now + value;
        }
    } else {
        target = value;
    }
    if (!err) {
        if (target < 0) {
            err = EINVAL;
        } else {
            ts.tv_sec = (time_t)(target / 1000000000);
            ts.tv_nsec = (long)(target % 1000000000);
            if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
                err = errno;
            }
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, FL_AGENT_CLOCK_RESULT, id, session);
    fl_agent_wr_u32(&w, (uint32_t)err);
    fl_agent_wr_i64(&w, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    fl_agent_wr_finish(&w, s);
    send_frame(&w);
}

static void handle(const struct fl_agent_header *h, const uint8_t *payload)
{
    if (h->session != session) {
        return; /* queued before this boot: never run it */
    }
    struct fl_agent_rd r = {.p = payload, .left = h->len};
    switch (h->type) {
    case FL_AGENT_PING: {
        struct fl_agent_wr w = {0};
        size_t s = fl_agent_wr_begin(&w, FL_AGENT_PONG, h->id, session);
        fl_agent_wr_finish(&w, s);
        send_frame(&w);
        break;
    }
    case FL_AGENT_EXEC:
        do_exec(h->id, &r);
        break;
    case FL_AGENT_CLOCK:
        do_clock(h->id, &r);
        break;
    default:
        send_error(h->id, EPROTO, "unexpected message type");
        break;
    }
}

static void port_read(void)
{
    static const size_t cap = FL_AGENT_HEADER_SIZE + FL_AGENT_PAYLOAD_MAX;
    if (!inbuf) {
        inbuf = malloc(cap);
        if (!inbuf) {
            return;
        }
    }
    ssize_t n = read(port, inbuf + insize, cap - insize);
    if (n <= 0) {
        if (n == 0) {
            /* No host connected: avoid spinning. */
            usleep(100000);
        }
        return;
    }
    insize += (size_t)n;
    size_t off = 0;
    while (insize - off >= FL_AGENT_HEADER_SIZE) {
        struct fl_agent_header h;
        if (fl_agent_header_parse(inbuf + off, &h) < 0) {
            logmsg("%s", "bad frame from host; input discarded");
            insize = off = 0;
            return;
        }
        if (insize - off < FL_AGENT_HEADER_SIZE + h.len) {
            break;
        }
        handle(&h, inbuf + off + FL_AGENT_HEADER_SIZE);
        off += FL_AGENT_HEADER_SIZE + h.len;
    }
    memmove(inbuf, inbuf + off, insize - off);
    insize -= off;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fl-agent DEVICE\n");
        return 2;
    }
    port = open(argv[1], O_RDWR | O_CLOEXEC);
    if (port < 0) {
        logmsg("cannot open %s", argv[1]);
        return 1;
    }
    if (getrandom(&session, sizeof session, GRND_NONBLOCK) != sizeof session) {
        session = (uint32_t)now_ms() ^ (uint32_t)getpid() << 16;
    }
    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_JOBS; i++) {
        jobs[i].fds[0] = jobs[i].fds[1] = -1;
    }

    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, FL_AGENT_HELLO, 0, session);
    fl_agent_wr_u32(&w, FL_AGENT_VERSION);
    fl_agent_wr_u32(&w, session);
    fl_agent_wr_finish(&w, s);
    send_frame(&w);

    for (;;) {
        struct pollfd pfds[2 + 2 * MAX_JOBS];
        struct job *owner[2 + 2 * MAX_JOBS];
        int kind[2 + 2 * MAX_JOBS];
        nfds_t n = 0;
        pfds[n] = (struct pollfd){.fd = port, .events = POLLIN};
        owner[n++] = NULL;
        pfds[n] = (struct pollfd){.fd = sigpipe_fds[0], .events = POLLIN};
        owner[n++] = NULL;
        int64_t now = now_ms(), wake = -1;
        for (int i = 0; i < MAX_JOBS; i++) {
            struct job *j = &jobs[i];
            if (!j->used) {
                continue;
            }
            if (j->pid && j->deadline_ms && now >= j->deadline_ms && !j->timed_out) {
                j->timed_out = true;
                kill(-j->pid, SIGKILL);
                kill(j->pid, SIGKILL);
            }
            if (!j->pid &&
                ((j->fds[0] < 0 && j->fds[1] < 0) || now >= j->reaped_ms + DRAIN_GRACE_MS)) {
                job_finish(j);
                continue;
            }
            int64_t t = !j->pid ? j->reaped_ms + DRAIN_GRACE_MS
                                : (j->deadline_ms && !j->timed_out ? j->deadline_ms : -1);
            if (t >= 0 && (wake < 0 || t < wake)) {
                wake = t;
            }
            for (int k = 0; k < 2; k++) {
                if (j->fds[k] >= 0) {
                    pfds[n] = (struct pollfd){.fd = j->fds[k], .events = POLLIN};
                    owner[n] = j;
                    kind[n++] = k;
                }
            }
        }
        int timeout = wake < 0 ? -1 : (int)(wake > now ? wake - now : 0);
        int r = poll(pfds, n, timeout);
        if (r < 0) {
            continue;
        }
        if (pfds[1].revents) {
            char tmp[64];
            while (read(sigpipe_fds[0], tmp, sizeof tmp) > 0) {
            }
            reap();
        }
        for (nfds_t i = 2; i < n; i++) {
            if (pfds[i].revents && owner[i]->used && owner[i]->fds[kind[i]] == pfds[i].fd) {
                job_read(owner[i], kind[i]);
            }
        }
        if (pfds[0].revents & POLLIN) {
            port_read();
        } else if (pfds[0].revents & (POLLHUP | POLLERR)) {
            usleep(100000);
        }
    }
}
