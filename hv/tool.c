/*
 * Running the image builder's tools (apt-cache, apt-get, dpkg-deb,
 * busybox, ldconfig): output captured, the last line of stderr quoted on
 * failure, and a build that is asked to stop ends the tool (SIGTERM, then
 * SIGKILL 2 s later).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/image.h"

bool hv_tool_run(const struct hv_build *b, const char *const *argv, const char *cwd,
                 struct fl_buf *out, struct fl_error **errp)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        fl_error_setf_errno(errp, errno, "pipe");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fl_error_setf_errno(errp, errno, "fork");
        return false;
    }
    if (pid == 0) {
        /* The caller may block or ignore signals (the runner reads SIGINT
         * through a signalfd): the tool gets the defaults, so a Ctrl-C at
         * the terminal reaches it too. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (cwd && chdir(cwd) < 0) {
            _exit(126);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        setenv("LC_ALL", "C", 1);
        setenv("DEBIAN_FRONTEND", "noninteractive", 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct fl_buf err = {0};
    int fds[2] = {po[0], pe[0]};
    bool open_[2] = {true, true};
    bool cancellable = b && b->spec->cancelled, killed = false;
    int64_t asked = fl_clock_mono_ns();
    while (open_[0] || open_[1]) {
        fd_set set;
        FD_ZERO(&set);
        for (int i = 0; i < 2; i++) {
            if (open_[i]) {
                FD_SET(fds[i], &set);
            }
        }
        struct timeval tick = {0, 100000};
        int r = select(FL_MAX(fds[0], fds[1]) + 1, &set, NULL, NULL, cancellable ? &tick : NULL);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        /* Every 100 ms, also while the tool keeps writing; a tool that
         * ignores SIGTERM gets SIGKILL 2 s later. */
        int64_t now = fl_clock_mono_ns();
        if (cancellable && !killed && now - asked >= 100 * FL_NS_PER_MS) {
            asked = now;
            if (b->spec->cancelled(b->spec->cancel_arg)) {
                kill(pid, SIGTERM);
                killed = true;
            }
        } else if (killed && asked && now - asked >= 2 * FL_NS_PER_SEC) {
            kill(pid, SIGKILL);
            asked = 0;
        }
        for (int i = 0; i < 2; i++) {
            if (open_[i] && FD_ISSET(fds[i], &set)) {
                char tmp[65536];
                ssize_t n = read(fds[i], tmp, sizeof tmp);
                if (n <= 0) {
                    open_[i] = false;
                } else if (i == 0 && out) {
                    fl_buf_append(out, tmp, (size_t)n);
                } else if (i == 1 && err.size < 8192) {
                    fl_buf_append(&err, tmp, (size_t)n);
                }
            }
        }
    }
    close(po[0]);
    close(pe[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (killed) {
        fl_buf_free(&err);
        fl_error_setf(errp, ECANCELED, "interrupted");
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fl_buf_free(&err);
        return true;
    }
    /* Last line of stderr says most. */
    while (err.size && (err.data[err.size - 1] == '\n' || err.data[err.size - 1] == ' ')) {
        err.data[--err.size] = '\0';
    }
    fl_error_setf(
        errp, EIO, "'%s' failed (%s %d)%s%s", argv[0], WIFEXITED(status) ? "exit status" : "signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : (WIFSIGNALED(status) ? WTERMSIG(status) : -1),
        err.size ? ": " : "", err.size ? err.data : "");
    fl_buf_free(&err);
    return false;
}
