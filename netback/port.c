/*
 * The guest-socket port kind: QEMU's -netdev stream on a unix socket.
 *
 *   listening socket ─ accept ─▶ connection (one at a time; a new one
 *   replaces it) ─ read() up to 256 KiB ─▶ reassembly ─▶ switch, per frame
 *   output(): bounded queue (cut-through lend, or copy) ─ flush(): writev
 *
 * Flow control lives here too: it is about reading from and writing to
 * these sockets (see "Flow control" below).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "netback/internal.h"

#define LOG_ROOM "netback"

static void port_disconnect(struct nb_sock_port *sp, enum nb_disconnect_reason reason,
                            const char *detail);

/* What the loop watches on a connection: input unless flow control holds
 * the port, output while its queue waits for the socket. */
static void port_watch(struct nb_sock_port *sp)
{
    if (sp->fd >= 0) {
        fl_loop_mod_fd(sp->up.nb->loop, sp->fd,
                       (sp->up.held_by ? 0 : EPOLLIN) | (sp->out_armed ? EPOLLOUT : 0));
    }
}

static void port_set_out(struct nb_sock_port *sp, bool want)
{
    if (sp->out_armed != want && sp->fd >= 0) {
        sp->out_armed = want;
        port_watch(sp);
    }
}

/* ------------------------------------------------------------------ */
/* Flow control                                                        */
/* ------------------------------------------------------------------ */

/*
 * A guest that reads slower than others send to it fills its queue;
 * dropping there would be the emulator's loss, not the scenario's.  So
 * when a queue reaches port_queue_size, the ports whose frames go to it
 * are held (not read: their QEMU stops taking frames from the guest, as
 * behind a slower NIC) until it drains below half.  A destination that
 * takes nothing for stall_ns (a paused or hung guest) is stalled instead:
 * it releases its senders and frames that do not fit are dropped, so
 * nobody waits on it for longer than that, until its socket takes bytes
 * again (tried before dropping).  A held sender's read in progress is
 * still switched (up to NB_HOLD_SLACK above the bound).
 */
static void set_held(struct nb_port *src, bool held)
{
    if (src->cls->set_held) {
        src->cls->set_held(src, held);
    }
}

static void hold_sender(struct nb_sock_port *dst, struct nb_port *src)
{
    if (!src || src == &dst->up || !src->cls->connected(src)) {
        return;
    }
    for (size_t i = 0; i < dst->n_holding; i++) {
        if (dst->holding[i] == src) {
            return;
        }
    }
    dst->holding =
        fl_xgrow(dst->holding, &dst->holding_alloc, dst->n_holding + 1, sizeof *dst->holding);
    dst->holding[dst->n_holding++] = src;
    if (src->held_by++ == 0) {
        src->stats.rx_holds++;
        set_held(src, true);
    }
}

static void release_senders(struct nb_sock_port *dst)
{
    for (size_t i = 0; i < dst->n_holding; i++) {
        struct nb_port *src = dst->holding[i];
        if (--src->held_by == 0) {
            set_held(src, false);
        }
    }
    dst->n_holding = 0;
}

/* A port leaves flow control (disconnected): it holds nobody and nobody
 * holds it. */
static void flow_forget(struct nb_sock_port *sp)
{
    struct nb_port *p = &sp->up;
    release_senders(sp);
    if (sp->congested) {
        p->nb->n_congested--;
    }
    sp->congested = sp->stalled = false;
    struct nb_network *net = p->net;
    for (size_t i = 0; i < net->n_ports; i++) {
        struct nb_sock_port *d = nb_sock_port(net->ports[i]);
        for (size_t k = 0; d && k < d->n_holding; k++) {
            if (d->holding[k] == p) {
                d->holding[k] = d->holding[--d->n_holding];
                p->held_by--;
                break;
            }
        }
    }
}

static void congest(struct netback *nb, struct nb_sock_port *dst, struct nb_port *src, int64_t now)
{
    if (!dst->congested) {
        dst->congested = true;
        nb->n_congested++;
        dst->progress_ns = now;
        if (fl_timer_deadline(nb->stall_timer) > now + nb->stall_ns) {
            fl_timer_arm(nb->stall_timer, now + nb->stall_ns);
        }
    }
    hold_sender(dst, src);
}

void nb_on_stall_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct netback *nb = arg;
    int64_t now = fl_loop_now(loop), next = INT64_MAX;
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_sock_port *sp = nb_sock_port(net->ports[i]);
            if (!sp || !sp->congested) {
                continue;
            }
            if (now - sp->progress_ns < nb->stall_ns) {
                next = FL_MIN(next, sp->progress_ns + nb->stall_ns);
                continue;
            }
            struct nb_port *p = &sp->up;
            sp->congested = false;
            nb->n_congested--;
            sp->stalled = true;
            p->stats.tx_stalls++;
            release_senders(sp);
            FL_LOG_RL(&nb->rl_info, FL_LOG_INFO, LOG_ROOM,
                      "%s/%s (network %s): the guest has read nothing for %lld ms with %zu bytes "
                      "queued; frames to it are dropped while its queue is full",
                      p->node_name, p->nic, net->name, (long long)(nb->stall_ns / FL_NS_PER_MS),
                      sp->outq.used);
        }
    }
    if (next != INT64_MAX) {
        fl_timer_arm(timer, next);
    }
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void sock_flush(struct nb_port *p)
{
    struct nb_sock_port *sp = nb_sock_port(p);
    if (sp->fd < 0 || nb_outq_empty(&sp->outq)) {
        port_set_out(sp, false);
        return;
    }
    long r = nb_outq_send(&sp->outq, sp->fd);
    if (r > 0) {
        /* The guest reads: flow controlled again (a stalled port's next
         * full queue holds its senders instead of dropping). */
        sp->progress_ns = fl_loop_now(p->nb->loop);
        sp->stalled = false;
        if (sp->congested && sp->outq.used < p->nb->cfg.port_queue_size / 2) {
            sp->congested = false;
            p->nb->n_congested--;
            release_senders(sp);
        }
    }
    if (r < 0 && r != -EAGAIN) {
        char detail[96];
        snprintf(detail, sizeof detail, "write failed: %s", strerror((int)-r));
        port_disconnect(
            sp, r == -EPIPE || r == -ECONNRESET ? NB_DISCONNECT_EOF : NB_DISCONNECT_ERROR, detail);
        return;
    }
    port_set_out(sp, !nb_outq_empty(&sp->outq));
}

/* Queues one copy for the port's guest; false if it does not fit. */
static bool sock_output(struct nb_port *p, const struct nb_copy *c, const uint8_t *data,
                        int64_t now)
{
    struct nb_sock_port *dst = nb_sock_port(p);
    struct netback *nb = p->nb;
    uint32_t size = c->size;
    size_t bound = nb->cfg.port_queue_size;
    if (dst->stalled && dst->outq.used + NB_STREAM_HDR_SIZE + size > bound &&
        now - dst->probe_ns >= NB_STALL_PROBE_NS) {
        /* About to drop at a stalled port: if its guest reads again (a
         * unix socket reports writable only once it is 3/4 empty), it is
         * flow controlled again instead.  At most once per probe period. */
        dst->probe_ns = now;
        sock_flush(p);
        if (dst->fd < 0) {
            return false;
        }
    }
    bool flow = nb->stall_ns >= 0 && !dst->stalled;
    size_t limit = flow ? dst->outq.capacity : bound;
    /* Cut-through: a frame forwarded as it lies in the read buffer (its
     * length prefix just before it) is lent to the queue, not copied; the
     * flush at the end of the read sends it from there. */
    uintptr_t at = (uintptr_t)data, lo = (uintptr_t)nb->feed_lo, hi = (uintptr_t)nb->feed_hi;
    bool in_read =
        !c->corrupt_mask && lo && at >= lo + NB_STREAM_HDR_SIZE && at <= hi && hi - at >= size;
    bool ok = dst->outq.used + NB_STREAM_HDR_SIZE + size <= limit &&
              ((in_read &&
                nb_outq_lend(&dst->outq, data - NB_STREAM_HDR_SIZE, NB_STREAM_HDR_SIZE + size)) ||
               nb_outq_push_flip(&dst->outq, data, size, c->corrupt_offset, c->corrupt_mask));
    if (flow && dst->outq.used >= bound) {
        congest(nb, dst, c->src, now);
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void port_disconnect(struct nb_sock_port *sp, enum nb_disconnect_reason reason,
                            const char *detail)
{
    struct nb_port *p = &sp->up;
    struct netback *nb = p->nb;
    if (sp->fd < 0) {
        return;
    }
    fl_loop_del_fd(nb->loop, sp->fd);
    close(sp->fd);
    sp->fd = -1;
    sp->out_armed = false;
    p->stats.connected = false;
    if (!p->mac_given) {
        p->has_mac = false; /* the next guest's first frame tells its MAC */
    }
    nb_reasm_reset(&sp->reasm);
    nb_outq_clear(&sp->outq);
    if (!nb->in_destroy) {
        flow_forget(sp);
    }
    if (reason == NB_DISCONNECT_MALFORMED) {
        p->stats.malformed_disconnects++;
        FL_LOG_RL(&nb->rl_malformed, FL_LOG_WARN, LOG_ROOM,
                  "%s/%s (network %s): closing the connection: malformed input from the guest: %s",
                  p->node_name, p->nic, p->net->name, detail);
    } else {
        FL_LOG_RL(&nb->rl_info, FL_LOG_INFO, LOG_ROOM, "%s/%s (network %s): disconnected (%s): %s",
                  p->node_name, p->nic, p->net->name, nb_disconnect_reason_name(reason), detail);
    }
    if (nb->cfg.events && nb->cfg.events->port_disconnected && !nb->in_destroy) {
        nb->cfg.events->port_disconnected(nb->cfg.events_arg, p->net->name, p->node_name, p->nic,
                                          reason, detail);
    }
}

static int on_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct nb_sock_port *sp = arg;
    nb_switch_frame(&sp->up, frame, size, sp->rx_now);
    return 0;
}

int nb_port_input(struct nb_port *p, const uint8_t *data, size_t size, int64_t now_ns)
{
    struct nb_sock_port *sp = nb_sock_port(p);
    struct netback *nb = p->nb;
    sp->rx_now = now_ns;
    nb->feed_lo = data;
    nb->feed_hi = data + size;
    int r = nb_reasm_feed(&sp->reasm, data, size, on_frame, sp);
    nb->feed_lo = nb->feed_hi = NULL;
    nb_settle(nb, now_ns);
    if (r == -EBADMSG) {
        char detail[sizeof sp->reasm.error];
        memcpy(detail, sp->reasm.error, sizeof detail);
        port_disconnect(sp, NB_DISCONNECT_MALFORMED, detail);
    }
    return r;
}

static void on_conn_event(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct nb_sock_port *sp = arg;
    struct netback *nb = sp->up.nb;
    if (events & EPOLLOUT) {
        sock_flush(&sp->up);
        if (sp->fd != fd) {
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    ssize_t n = read(fd, nb->rxbuf, nb->n_congested ? NB_READ_HELD_SIZE : NB_READ_BUFFER_SIZE);
    if (n > 0) {
        nb_port_input(&sp->up, nb->rxbuf, (size_t)n, fl_loop_now(loop));
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "read failed: %s", strerror(errno));
        port_disconnect(sp, errno == ECONNRESET ? NB_DISCONNECT_EOF : NB_DISCONNECT_ERROR, detail);
        return;
    }
    if (nb_reasm_finish(&sp->reasm) < 0) {
        char detail[sizeof sp->reasm.error];
        memcpy(detail, sp->reasm.error, sizeof detail);
        port_disconnect(sp, NB_DISCONNECT_MALFORMED, detail);
    } else {
        port_disconnect(sp, NB_DISCONNECT_EOF, "the peer closed the connection");
    }
}

int nb_port_attach(struct nb_port *p, int fd)
{
    struct nb_sock_port *sp = nb_sock_port(p);
    struct netback *nb = p->nb;
    if (sp->fd >= 0) {
        port_disconnect(sp, NB_DISCONNECT_REPLACED, "a new connection took over the socket");
    }
    int r = fl_loop_add_fd(nb->loop, fd, EPOLLIN, on_conn_event, sp);
    if (r < 0) {
        return r;
    }
    sp->fd = fd;
    sp->out_armed = false;
    p->stats.connected = true;
    p->stats.connects++;
    nb_reasm_reset(&sp->reasm);
    FL_LOG_RL(&nb->rl_info, FL_LOG_INFO, LOG_ROOM, "%s/%s (network %s): guest connected",
              p->node_name, p->nic, p->net->name);
    if (nb->cfg.events && nb->cfg.events->port_connected) {
        nb->cfg.events->port_connected(nb->cfg.events_arg, p->net->name, p->node_name, p->nic);
    }
    return 0;
}

static void on_listen_event(struct fl_loop *loop, int lfd, uint32_t events, void *arg)
{
    struct nb_sock_port *sp = arg;
    struct nb_port *p = &sp->up;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
            FL_LOG_RL(&p->nb->rl_info, FL_LOG_WARN, LOG_ROOM, "%s/%s: accept on %s: %s",
                      p->node_name, p->nic, sp->path, strerror(errno));
        }
        return;
    }
    int r = nb_port_attach(p, fd);
    if (r < 0) {
        fl_log(FL_LOG_ERROR, LOG_ROOM, "%s/%s: cannot watch the connection: %s", p->node_name,
               p->nic, strerror(-r));
        close(fd);
    }
}

static int listen_unix(const char *path, struct fl_error **errp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fl_error_setf(errp, ENAMETOOLONG, "socket path '%s' is %zu bytes long (at most %zu)", path,
                      strlen(path), sizeof sa.sun_path - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, EEXIST,
                          "socket path '%s' exists and is not a socket (refusing to replace it)",
                          path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "socket(AF_UNIX)");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fl_error_setf_errno(errp, errno, "bind '%s'", path);
        close(fd);
        return -1;
    }
    if (chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        fl_error_setf_errno(errp, errno, "listen on '%s'", path);
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

bool nb_sock_port_open(struct nb_sock_port *sp, const char *socket_path, struct fl_error **errp)
{
    struct netback *nb = sp->up.nb;
    sp->fd = -1;
    sp->lfd = listen_unix(socket_path, errp);
    if (sp->lfd < 0) {
        return false;
    }
    int r = fl_loop_add_fd(nb->loop, sp->lfd, EPOLLIN, on_listen_event, sp);
    if (r < 0) {
        fl_error_setf_errno(errp, -r, "watching '%s'", socket_path);
        close(sp->lfd);
        unlink(socket_path);
        return false;
    }
    sp->path = fl_xstrdup(socket_path);
    nb_reasm_init(&sp->reasm);
    nb_outq_init(&sp->outq, nb->cfg.port_queue_size + (nb->stall_ns >= 0 ? NB_HOLD_SLACK : 0));
    return true;
}

/* ------------------------------------------------------------------ */
/* The ops table                                                       */
/* ------------------------------------------------------------------ */

static bool sock_connected(const struct nb_port *p)
{
    return container_of(p, const struct nb_sock_port, up)->fd >= 0;
}

static void sock_set_held(struct nb_port *p, bool held)
{
    (void)held; /* port_watch reads held_by */
    port_watch(nb_sock_port(p));
}

static void sock_stats(const struct nb_port *p, struct nb_port_stats *out)
{
    const struct nb_sock_port *sp = container_of(p, const struct nb_sock_port, up);
    out->connected = sp->fd >= 0;
    out->queued_bytes = sp->outq.used;
}

static const char *sock_where(const struct nb_port *p)
{
    return container_of(p, const struct nb_sock_port, up)->path;
}

static void sock_destroy(struct nb_port *p)
{
    struct nb_sock_port *sp = nb_sock_port(p);
    struct netback *nb = p->nb;
    port_disconnect(sp, NB_DISCONNECT_REMOVED, "netback is shutting down");
    if (sp->lfd >= 0) {
        fl_loop_del_fd(nb->loop, sp->lfd);
        close(sp->lfd);
        unlink(sp->path);
    }
    nb_reasm_free(&sp->reasm);
    nb_outq_free(&sp->outq);
    free(sp->holding);
    free(sp->path);
    free(sp);
}

const struct nb_port_class nb_guest_socket_class = {
    .kind = "guest-socket",
    .connected = sock_connected,
    .output = sock_output,
    .flush = sock_flush,
    .set_held = sock_set_held,
    .stats = sock_stats,
    .where = sock_where,
    .destroy = sock_destroy,
};
