/*
 * One guest: a QEMU microvm process, its QMP monitor and its agent
 * channel, all driven from core's event loop.
 *
 *   hv_node_boot ──fork/exec──▶ qemu (own process group, PDEATHSIG=KILL)
 *        │ fd 3 = QMP socketpair      greeting ▶ qmp_capabilities ▶ commands
 *        │ fd 4 = agent socketpair    HELLO ▶ setup script (EXEC) ▶ READY
 *        └ pidfd in the loop          exit ▶ on_exit(unexpected?)
 *
 *   OFF ─boot─▶ BOOTING ─setup ok─▶ READY ⇄ PAUSED (QMP stop/cont)
 *    ▲             ▲ reset/reboot ◀──┘ │
 *    └──── QEMU exit (any state) ◀─────┴── STOPPING (poweroff)
 *
 * No file in run_dir but the console log: QMP and the agent use
 * socketpairs handed to QEMU as fds, so there is nothing to race on and
 * nothing to clean up.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/node.h"

FL_NAME_TABLE(state_names, HV_NODE_STATES);

static void node_free(struct hv_node *n);
static void on_ready_timer(struct fl_loop *loop, struct fl_timer *t, void *arg);
static void on_kill_timer(struct fl_loop *loop, struct fl_timer *t, void *arg);

const char *hv_node_state_name(enum hv_node_state state)
{
    return FL_NAME_OF(state_names, state);
}

void hv_node_ref(struct hv_node *n)
{
    n->refs++;
}

void hv_node_unref(struct hv_node *n)
{
    if (--n->refs == 0) {
        node_free(n);
    }
}

struct hv_node *hv_node_create(struct fl_loop *loop, const struct hv_node_config *config,
                               const struct hv_callbacks *cb, void *arg, struct fl_error **errp)
{
    if (!loop || !config) {
        fl_error_setf(errp, EINVAL, "hv_node_create: loop and config are required");
        return NULL;
    }
    if (!hv_node_config_check(config, errp)) {
        return NULL;
    }
    struct hv_node *n = fl_xcalloc(1, sizeof *n);
    n->loop = loop;
    n->refs = 1;
    if (cb) {
        n->cb = *cb;
    }
    n->arg = arg;
    n->pidfd = n->qmp_fd = n->agent_fd = -1;
    hv_node_config_copy(n, config);
    struct hv_node_config *c = &n->cfg;
    const char *why = NULL;
    n->accel = hv_accel_resolve(config->accel, &why);
    fl_log(FL_LOG_INFO, "hv", "node %s: accelerator %s (%s)", c->name, hv_accel_name(n->accel),
           why);
    if (!c->ready_timeout_ns) {
        c->ready_timeout_ns = n->accel == HV_ACCEL_KVM ? DEFAULT_READY_KVM : DEFAULT_READY_TCG;
    }
    hv_qemu_cmdline(&n->argv, c, n->accel);
    n->ready_timer = fl_timer_create(n->loop, on_ready_timer, n);
    n->kill_timer = fl_timer_create(n->loop, on_kill_timer, n);
    return n;
}

const char *hv_node_name(const struct hv_node *node)
{
    return node->cfg.name;
}

enum hv_node_state hv_node_state(const struct hv_node *node)
{
    return node->state;
}

pid_t hv_node_pid(const struct hv_node *node)
{
    return node->pid;
}

const char *const *hv_node_argv(const struct hv_node *node)
{
    return (const char *const *)node->argv.v;
}

int64_t hv_node_boot_ns(const struct hv_node *node)
{
    return node->boot_ns;
}

void hv_node_set_state(struct hv_node *n, enum hv_node_state s)
{
    if (n->state == s) {
        return;
    }
    fl_log(FL_LOG_DEBUG, "hv", "node %s: %s -> %s", n->cfg.name, hv_node_state_name(n->state),
           hv_node_state_name(s));
    n->state = s;
}

void hv_node_fail(struct hv_node *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct fl_error *err = NULL;
    fl_error_vsetf(&err, code, fmt, ap);
    va_end(ap);
    fl_error_prepend(&err, "node %s: ", n->cfg.name);
    fl_log(FL_LOG_WARN, "hv", "%s", err->msg);
    if (n->cb.on_fail) {
        n->cb.on_fail(n, err, n->arg);
    }
    fl_error_free(err);
}

/* Closes every channel of a QEMU that exited (or is being destroyed). */
static void close_channels(struct hv_node *n)
{
    int *fds[] = {&n->pidfd, &n->qmp_fd, &n->agent_fd};
    for (size_t i = 0; i < FL_ARRAY_LEN(fds); i++) {
        if (*fds[i] >= 0) {
            fl_loop_del_fd(n->loop, *fds[i]);
            close(*fds[i]);
            *fds[i] = -1;
        }
    }
    hv_qmp_reset(n);
    hv_agent_reset(n);
    fl_timer_disarm(n->ready_timer);
    fl_timer_disarm(n->kill_timer);
}

static void on_pidfd(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    int status = 0;
    pid_t r = waitpid(n->pid, &status, WNOHANG);
    if (r == 0) {
        return;
    }
    if (r < 0 && errno != ECHILD) {
        return;
    }
    bool unexpected = !n->expected_exit;
    fl_log(unexpected ? FL_LOG_WARN : FL_LOG_INFO, "hv", "node %s: QEMU (pid %d) exited: %s %d%s",
           n->cfg.name, (int)n->pid, WIFSIGNALED(status) ? "signal" : "status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
           unexpected ? " (unexpected)" : "");
    n->pid = 0;
    close_channels(n);
    hv_node_set_state(n, HV_NODE_OFF);
    hv_node_ref(n);
    hv_req_fail_all(n, ENOTCONN, "QEMU exited");
    if (!n->destroyed && n->cb.on_exit) {
        n->cb.on_exit(n, unexpected, status, n->arg);
    }
    hv_node_unref(n);
}

void hv_node_kill_qemu(struct hv_node *n)
{
    if (n->pid > 0) {
        n->expected_exit = true;
        kill(-n->pid, SIGKILL);
        kill(n->pid, SIGKILL);
    }
}

static void on_kill_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_node *n = arg;
    fl_log(FL_LOG_WARN, "hv", "node %s: QEMU did not quit in time; killing it", n->cfg.name);
    hv_node_kill_qemu(n);
}

static void on_ready_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_node *n = arg;
    if (n->state != HV_NODE_BOOTING) {
        return;
    }
    hv_node_ref(n);
    hv_node_fail(n, ETIMEDOUT, "not ready within %.0f s (%s); see the console log '%s'",
                 (double)n->cfg.ready_timeout_ns / 1e9,
                 n->ag_hello ? "the agent answered but the setup did not finish"
                             : "the guest agent never said hello",
                 n->cfg.console_log);
    if (!n->destroyed) {
        hv_node_kill_qemu(n);
    }
    hv_node_unref(n);
}

static void hv_node_start_setup(struct hv_node *n)
{
    char *script = hv_setup_script(&n->cfg);
    int64_t left = n->cfg.ready_timeout_ns - (fl_loop_now(n->loop) - n->boot_start_ns);
    struct hv_req *r = hv_req_new(n, HV_REQ_SETUP, FL_MAX(left, FL_NS_PER_SEC) + EXEC_GRACE_NS);
    hv_agent_send_exec(n, r, script, FL_MAX(left, FL_NS_PER_SEC));
    free(script);
}

void hv_node_setup_done(struct hv_node *n, const struct hv_exec_result *res)
{
    if (res->exit_code == 0) {
        n->boot_ns = fl_loop_now(n->loop) - n->boot_start_ns;
        fl_timer_disarm(n->ready_timer);
        hv_node_set_state(n, HV_NODE_READY);
        fl_log(FL_LOG_INFO, "hv", "node %s: ready in %.2f s", n->cfg.name,
               (double)n->boot_ns / 1e9);
        if (n->cb.on_ready) {
            n->cb.on_ready(n, n->arg);
        }
        return;
    }
    /* Last line of stderr is usually the reason. */
    const char *e = res->err;
    size_t len = res->err_size;
    while (len && (e[len - 1] == '\n')) {
        len--;
    }
    size_t start = len;
    while (start && e[start - 1] != '\n') {
        start--;
    }
    hv_node_fail(n, EIO, "node setup failed in the guest (exit %d): %.*s", res->exit_code,
                 (int)(len - start), e + start);
}

void hv_node_poweroff_done(struct hv_node *n)
{
    if (hv_rr_quit(n)) {
        return;
    }
    if (n->pid > 0) {
        struct fl_error *err = NULL;
        if (!hv_qmp_cmd(n, "quit", &err)) {
            fl_error_free(err);
            hv_node_kill_qemu(n);
        }
        fl_timer_arm_in(n->kill_timer, QUIT_KILL_DELAY_NS);
    }
}

void hv_node_qmp_event(struct hv_node *n, const char *ev)
{
    fl_log(FL_LOG_DEBUG, "hv", "node %s: QMP event %s", n->cfg.name, ev);
    if (!strcmp(ev, "STOP")) {
        if (n->state == HV_NODE_READY || n->state == HV_NODE_BOOTING) {
            n->pre_pause = n->state;
            hv_node_set_state(n, HV_NODE_PAUSED);
            if (n->cb.on_state) {
                n->cb.on_state(n, HV_NODE_PAUSED, n->arg);
            }
        }
    } else if (!strcmp(ev, "RESUME")) {
        if (n->state == HV_NODE_PAUSED) {
            hv_node_set_state(n, n->pre_pause);
            if (n->cb.on_state) {
                n->cb.on_state(n, n->state, n->arg);
            }
        }
    } else if (!strcmp(ev, "RESET")) {
        /* The guest reboots: a new agent session will say hello. */
        if (n->state != HV_NODE_STOPPING && n->state != HV_NODE_OFF) {
            hv_node_set_state(n, HV_NODE_BOOTING);
            n->ag_hello = false;
            n->boot_start_ns = fl_loop_now(n->loop);
            n->boot_ns = 0;
            fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
            hv_req_fail_all(n, ECONNRESET, "the guest was reset");
        }
    }
}

void hv_node_agent_hello(struct hv_node *n, uint32_t session)
{
    fl_log(FL_LOG_DEBUG, "hv", "node %s: agent hello (session %08x)", n->cfg.name, session);
    if (n->ag_hello && n->session != session) {
        /* A reboot we did not see as a QMP RESET (guest reboot). */
        hv_req_fail_all(n, ECONNRESET, "the guest rebooted");
    }
    n->session = session;
    n->ag_hello = true;
    if (n->state == HV_NODE_READY || n->state == HV_NODE_PAUSED) {
        hv_node_set_state(n, HV_NODE_BOOTING);
        n->boot_start_ns = fl_loop_now(n->loop);
        fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
    }
    if (n->state == HV_NODE_BOOTING) {
        hv_node_start_setup(n);
    }
}

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether execvp() would find `prog`: a path with a slash is taken as
 * is, a bare name is looked up in PATH. */
static bool qemu_runnable(const char *prog)
{
    if (strchr(prog, '/')) {
        return access(prog, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    char *dirs = fl_xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char *full = fl_xasprintf("%s/%s", *d ? d : ".", prog);
        found = access(full, X_OK) == 0;
        free(full);
    }
    free(dirs);
    return found;
}

bool hv_node_boot(struct hv_node *n, struct fl_error **errp)
{
    if (n->state != HV_NODE_OFF || n->pid) {
        fl_error_setf(errp, EBUSY, "node %s: cannot boot: it is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    /* QEMU 7.2 connects stream netdevs once, asynchronously: a missing
     * netback socket would leave the NIC silently unplugged. */
    for (size_t i = 0; i < n->cfg.n_nics + n->cfg.n_disks; i++) {
        bool nic = i < n->cfg.n_nics;
        const char *path = nic ? n->cfg.nics[i].socket_path : n->cfg.disks[i - n->cfg.n_nics].path;
        if (!nic && n->cfg.disks[i - n->cfg.n_nics].kind != HV_DISK_NBD) {
            continue;
        }
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, ENOENT,
                          "node %s: %s[%zu]: no unix socket at '%s' (%s must be listening "
                          "before the node boots)",
                          n->cfg.name, nic ? "nics" : "disks", nic ? i : i - n->cfg.n_nics, path,
                          nic ? "netback" : "the NBD server");
            return false;
        }
    }
    if (!hv_rr_boot_check(n, errp)) {
        return false;
    }
    if (!qemu_runnable(n->argv.v[0])) {
        fl_error_setf(errp, ENOENT,
                      "node %s: QEMU '%s' was not found%s: install it (Debian: apt-get install "
                      "qemu-system-x86, which scripts/install-deps does) or set FAULTLINE_QEMU "
                      "to the qemu-system-x86_64 to use",
                      n->cfg.name, n->argv.v[0], strchr(n->argv.v[0], '/') ? "" : " in PATH");
        return false;
    }
    int qmp[2], ag[2], errpipe[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: socketpair", n->cfg.name);
        return false;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ag) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: socketpair", n->cfg.name);
        close(qmp[0]), close(qmp[1]);
        return false;
    }
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: pipe", n->cfg.name);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        return false;
    }
    int logfd = open(n->cfg.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        fl_error_setf_errno(errp, errno, "node %s: cannot open console log '%s'", n->cfg.name,
                            n->cfg.console_log);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        close(errpipe[0]), close(errpipe[1]);
        return false;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fl_error_setf_errno(errp, errno, "node %s: fork", n->cfg.name);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        close(errpipe[0]), close(errpipe[1]), close(logfd);
        return false;
    }
    if (pid == 0) {
        /* QEMU dies with the controller, whatever kills the controller. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        setpgid(0, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) {
                signal(s, SIG_DFL);
            }
        }
        /* fds 3 and 4 are QMP and the agent; move sources out of the way */
        int q = fcntl(qmp[1], F_DUPFD, 10), a = fcntl(ag[1], F_DUPFD, 10);
        int ep = fcntl(errpipe[1], F_DUPFD_CLOEXEC, 10), lf = fcntl(logfd, F_DUPFD, 10);
        int nul = open("/dev/null", O_RDONLY);
        if (q < 0 || a < 0 || ep < 0 || lf < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(lf, 1) < 0 ||
            dup2(lf, 2) < 0 || dup2(q, 3) < 0 || dup2(a, 4) < 0) {
            int e = errno;
            ssize_t w = write(ep, &e, sizeof e);
            (void)w;
            _exit(127);
        }
        syscall(SYS_close_range, 5, ~0U, 0);
        /* close_range closed ep too: reopen the pipe end is impossible, so
         * report exec failures through the exit status and the log. */
        execvp(n->argv.v[0], n->argv.v);
        dprintf(2, "faultline: cannot run '%s': %s\n", n->argv.v[0], strerror(errno));
        _exit(127);
    }
    close(qmp[1]);
    close(ag[1]);
    close(errpipe[1]);
    close(logfd);
    int child_err = 0;
    ssize_t got = read(errpipe[0], &child_err, sizeof child_err);
    close(errpipe[0]);
    if (got == (ssize_t)sizeof child_err) {
        waitpid(pid, NULL, 0);
        close(qmp[0]);
        close(ag[0]);
        fl_error_setf_errno(errp, child_err, "node %s: cannot set up QEMU's descriptors",
                            n->cfg.name);
        return false;
    }
    int pidfd = sys_pidfd_open(pid);
    if (pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(qmp[0]);
        close(ag[0]);
        fl_error_setf_errno(errp, e, "node %s: pidfd_open", n->cfg.name);
        return false;
    }
    n->pid = pid;
    n->pidfd = pidfd;
    hv_rr_booted(n);
    n->qmp_fd = qmp[0];
    n->agent_fd = ag[0];
    n->expected_exit = false;
    n->ag_hello = false;
    n->ag_dead = false;
    n->session = 0;
    fl_set_nonblock(n->qmp_fd);
    fl_set_nonblock(n->agent_fd);
    fl_loop_add_fd(n->loop, pidfd, EPOLLIN, on_pidfd, n);
    fl_loop_add_fd(n->loop, n->qmp_fd, EPOLLIN, hv_qmp_on_readable, n);
    fl_loop_add_fd(n->loop, n->agent_fd, EPOLLIN, hv_agent_on_readable, n);
    n->boot_start_ns = fl_loop_now(n->loop);
    n->boot_ns = 0;
    fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
    hv_node_set_state(n, HV_NODE_BOOTING);
    fl_log(FL_LOG_INFO, "hv", "node %s: QEMU started (pid %d, %s)", n->cfg.name, (int)pid,
           hv_accel_name(n->accel));
    return true;
}

static void node_free(struct hv_node *n)
{
    hv_node_config_free(n);
    hv_argv_free(&n->argv);
    free(n->ag_in);
    fl_agent_wr_free(&n->ag_out);
    fl_buf_free(&n->qmp_in);
    fl_buf_free(&n->qmp_out);
    free(n);
}

void hv_node_destroy(struct hv_node *n)
{
    if (!n || n->destroyed) {
        return;
    }
    n->destroyed = true;
    if (n->pid > 0) {
        hv_node_kill_qemu(n);
        while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        n->pid = 0;
    }
    close_channels(n);
    while (n->reqs) {
        struct hv_req *r = n->reqs;
        hv_req_unlink(n, r);
        free(r);
    }
    fl_timer_destroy(n->ready_timer);
    fl_timer_destroy(n->kill_timer);
    n->ready_timer = n->kill_timer = NULL;
    hv_rr_destroy(n);
    hv_node_unref(n);
}
