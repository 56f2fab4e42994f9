/*
 * The disk's unix socket: created 0600 whatever the umask (only the
 * controller's user may connect: a guest's disk is not for other local
 * users), accepted from the event loop.  When accept() runs out of
 * descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) the level-triggered
 * listener would stay readable and spin the loop at 100% CPU: instead the
 * listener is taken out of the loop, a warning is logged (the first time
 * only; later pauses are counted in accept_pauses), and it comes back
 * when one of the disk's connections closes, or after a second.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkback/internal.h"

#define ACCEPT_RETRY_NS FL_NS_PER_SEC

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void accept_pause(struct bb_disk *d, int err)
{
    if (d->accept_paused) {
        return;
    }
    d->accept_paused = true;
    d->st.accept_pauses++;
    fl_loop_mod_fd(d->bb->loop, d->listen_fd, 0);
    fl_timer_arm_in(d->accept_retry, ACCEPT_RETRY_NS);
    if (d->st.accept_pauses == 1) {
        fl_log(FL_LOG_WARN, ROOM,
               "%s:%s: accept on '%s': %s; not accepting until a connection closes (or 1 s); "
               "later pauses are counted, not logged",
               d->node, d->name, d->socket_path, strerror(err));
    }
}

void bb_listen_resume(struct bb_disk *d)
{
    if (!d->accept_paused || d->listen_fd < 0) {
        return;
    }
    d->accept_paused = false;
    fl_timer_disarm(d->accept_retry);
    fl_loop_mod_fd(d->bb->loop, d->listen_fd, EPOLLIN);
}

static void accept_retry_cb(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    bb_listen_resume(arg);
}

static void listen_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct bb_disk *d = arg;
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (out_of_descriptors(errno)) {
                accept_pause(d, errno);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                FL_LOG_RL(&d->rl, FL_LOG_WARN, ROOM, "%s:%s: accept: %s", d->node, d->name,
                          strerror(errno));
            }
            return;
        }
        int e = bb_disk_attach_fd(d, cfd);
        if (e < 0) {
            FL_LOG_RL(&d->rl, FL_LOG_WARN, ROOM, "%s:%s: cannot serve a connection: %s", d->node,
                      d->name, strerror(-e));
        }
    }
}

bool bb_listen(struct bb_disk *d, struct fl_error **errp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(d->socket_path) >= sizeof(sa.sun_path)) {
        fl_error_setf(errp, ENAMETOOLONG,
                      "socket path '%s' is %zu bytes; unix socket paths must be shorter than "
                      "%zu bytes",
                      d->socket_path, strlen(d->socket_path), sizeof(sa.sun_path));
        return false;
    }
    strcpy(sa.sun_path, d->socket_path);
    struct stat st;
    if (lstat(d->socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, EEXIST, "'%s' exists and is not a socket; refusing to replace it",
                          d->socket_path);
            return false;
        }
        unlink(d->socket_path);
    }
    d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->listen_fd < 0) {
        fl_error_setf_errno(errp, errno, "socket()");
        return false;
    }
    /* nobody can connect between bind() and listen(): chmod in between
     * makes the socket 0600 before it accepts anyone, whatever the umask */
    if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(d->socket_path, 0600) < 0 || listen(d->listen_fd, 16) < 0) {
        fl_error_setf_errno(errp, errno, "cannot listen on '%s'", d->socket_path);
        close(d->listen_fd);
        d->listen_fd = -1;
        return false;
    }
    d->accept_retry = fl_timer_create(d->bb->loop, accept_retry_cb, d);
    int e = fl_loop_add_fd(d->bb->loop, d->listen_fd, EPOLLIN, listen_cb, d);
    if (e < 0) {
        fl_error_setf_errno(errp, -e, "cannot watch '%s'", d->socket_path);
        close(d->listen_fd);
        d->listen_fd = -1;
        unlink(d->socket_path);
        return false;
    }
    return true;
}

void bb_unlisten(struct bb_disk *d)
{
    fl_timer_destroy(d->accept_retry);
    d->accept_retry = NULL;
    if (d->listen_fd >= 0) {
        fl_loop_del_fd(d->bb->loop, d->listen_fd);
        close(d->listen_fd);
        d->listen_fd = -1;
        unlink(d->socket_path);
    }
}
