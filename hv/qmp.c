/*
 * The QMP session of a node: QEMU's monitor on a socketpair (fd 3 in
 * QEMU), one JSON object per line (json.c reads them strictly).
 *
 *   QEMU ─ {"QMP": ...} greeting ─▶ we send qmp_capabilities, then any
 *          commands queued before the greeting, then each command as asked
 *   QEMU ─ {"event": ...} ─▶ hv_node_qmp_event (node.c: STOP/RESUME/RESET)
 *   QEMU ─ {"error": ...} ─▶ hv_node_fail;  {"return": ...} is not awaited
 *
 * A line longer than QMP_LINE_MAX or malformed JSON is reported (EPROTO)
 * and dropped; EOF closes the session (the pidfd reports QEMU's exit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv/node.h"

static void qmp_flush(struct hv_node *n)
{
    while (n->qmp_out.size) {
        ssize_t w = send(n->qmp_fd, n->qmp_out.data, n->qmp_out.size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                fl_loop_mod_fd(n->loop, n->qmp_fd, EPOLLIN | EPOLLOUT);
            }
            return;
        }
        memmove(n->qmp_out.data, n->qmp_out.data + w, n->qmp_out.size - (size_t)w);
        n->qmp_out.size -= (size_t)w;
        n->qmp_out.data[n->qmp_out.size] = '\0';
    }
    fl_loop_mod_fd(n->loop, n->qmp_fd, EPOLLIN);
}

bool hv_qmp_cmd(struct hv_node *n, const char *cmd, struct fl_error **errp)
{
    if (n->qmp_fd < 0) {
        fl_error_setf(errp, ENOTCONN, "node %s: QEMU is not running", n->cfg.name);
        return false;
    }
    fl_buf_printf(&n->qmp_out, "{\"execute\":\"%s\",\"id\":%u}\n", cmd, ++n->qmp_next_id);
    if (n->qmp_greeted) {
        qmp_flush(n);
    }
    return true;
}

static void qmp_message(struct hv_node *n, const struct fl_json *msg)
{
    if (!n->qmp_greeted) {
        if (!fl_json_get(msg, "QMP")) {
            hv_node_fail(n, EPROTO, "QMP: no greeting from QEMU");
            return;
        }
        n->qmp_greeted = true;
        /* Capabilities first, ahead of anything queued. */
        struct fl_buf b = {0};
        fl_buf_puts(&b, "{\"execute\":\"qmp_capabilities\"}\n");
        if (n->qmp_out.size) {
            fl_buf_append(&b, n->qmp_out.data, n->qmp_out.size);
        }
        fl_buf_free(&n->qmp_out);
        n->qmp_out = b;
        qmp_flush(n);
        return;
    }
    const char *ev = fl_json_get_str(msg, "event");
    if (ev) {
        hv_node_qmp_event(n, ev);
        return;
    }
    const struct fl_json *ret = fl_json_get(msg, "return");
    if (ret) {
        hv_rr_qmp_return(n, ret);
        return;
    }
    const struct fl_json *e = fl_json_get(msg, "error");
    if (e) {
        const char *desc = fl_json_get_str(e, "desc");
        hv_node_fail(n, EIO, "QMP error: %s", desc ? desc : "(no description)");
    }
}

void hv_qmp_on_readable(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    if (events & EPOLLOUT) {
        qmp_flush(n);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    char buf[65536];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        /* QEMU is going away; the pidfd reports the exit. */
        fl_loop_del_fd(loop, fd);
        close(fd);
        n->qmp_fd = -1;
        return;
    }
    fl_buf_append(&n->qmp_in, buf, (size_t)r);
    hv_node_ref(n);
    for (;;) {
        char *nl = n->qmp_in.data ? memchr(n->qmp_in.data, '\n', n->qmp_in.size) : NULL;
        if (!nl) {
            if (n->qmp_in.size > QMP_LINE_MAX) {
                hv_node_fail(n, EPROTO, "QMP: line longer than %u bytes", QMP_LINE_MAX);
                fl_buf_reset(&n->qmp_in);
            }
            break;
        }
        size_t len = (size_t)(nl - n->qmp_in.data);
        struct fl_error *err = NULL;
        struct fl_json *msg = fl_json_parse(n->qmp_in.data, len, &err);
        if (msg) {
            qmp_message(n, msg);
            fl_json_free(msg);
        } else {
            hv_node_fail(n, EPROTO, "QMP: %s", err->msg);
            fl_error_free(err);
        }
        if (n->destroyed || n->qmp_fd < 0) {
            break;
        }
        memmove(n->qmp_in.data, nl + 1, n->qmp_in.size - len - 1);
        n->qmp_in.size -= len + 1;
        n->qmp_in.data[n->qmp_in.size] = '\0';
    }
    hv_node_unref(n);
}

void hv_qmp_reset(struct hv_node *n)
{
    fl_buf_reset(&n->qmp_in);
    fl_buf_reset(&n->qmp_out);
    n->qmp_greeted = false;
}
