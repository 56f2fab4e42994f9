/*
 * One client connection: the bytes in and out, and when to read more.
 *
 *   socket ─recv─▶ in buffer ─▶ handshake.c / transmission.c ─▶ out buffer ─send─▶ socket
 *
 * Input is parsed only while the connection may take more (bb_conn_can_take):
 * not while its client leaves more than OUT_HIGH of replies unread, has
 * MAX_INFLIGHT requests outstanding, or while every connection together
 * holds more than the backend's buffer limit (replies not yet sent, write
 * payloads held by a stall, read data held for its latency) and this
 * connection holds some of it.  Then the socket is left unread (EPOLLIN
 * off), so the client's own socket buffer fills and it blocks:
 * backpressure instead of growth.  Over the limit a connection that holds
 * nothing may still run one request, so a client that reads its replies
 * is never starved by those that do not: the total stays under the limit
 * plus one request per connection.  Everyone resumes when the total falls
 * under three quarters of the limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blkback/internal.h"

/* Buffers above this are freed when they empty (a 32 MiB reply must not
 * stay allocated for the life of the connection). */
#define KEEP_BUFFER (1u << 20)

void bb_account(struct bb_conn *c, int64_t delta)
{
    struct blkback *bb = c->disk->bb;
    c->held = (uint64_t)((int64_t)c->held + delta);
    bb->buffered = (uint64_t)((int64_t)bb->buffered + delta);
    if (!bb->over_limit && bb->buffered >= bb->buffer_limit) {
        bb->over_limit = true;
        bb->backpressure_on++;
    } else if (bb->over_limit && bb->buffered <= bb->buffer_limit - bb->buffer_limit / 4) {
        bb->over_limit = false;
        /* resume the connections from a clean stack, not from inside
         * whichever request freed the bytes */
        fl_timer_arm(bb->wake, 0);
    }
}

uint8_t *bb_out_reserve(struct bb_conn *c, size_t n)
{
    if (c->out_alloc - c->out_end < n) {
        if (c->out_start > 0) {
            memmove(c->out, c->out + c->out_start, c->out_end - c->out_start);
            c->out_end -= c->out_start;
            c->out_start = 0;
        }
        if (c->out_alloc - c->out_end < n) {
            c->out = fl_xgrow(c->out, &c->out_alloc, c->out_end + n, 1);
        }
    }
    uint8_t *p = c->out + c->out_end;
    c->out_end += n;
    bb_account(c, (int64_t)n);
    return p;
}

void bb_out_unreserve(struct bb_conn *c, size_t mark)
{
    bb_account(c, -(int64_t)(c->out_end - mark));
    c->out_end = mark;
}

/* May more input be parsed now?  Not while the client leaves replies
 * unread or has too many requests in flight, nor while all connections
 * together are over the backend's buffer limit: a guest cannot make the
 * controller buffer without bound. */
bool bb_conn_can_take(const struct bb_conn *c)
{
    /* over the global bound a connection goes on only while it holds
     * nothing (one request at a time), so clients that do not read cannot
     * starve those that do; the handshake's few small replies are exempt:
     * a client can always connect */
    return !c->dead && !c->disc && c->state != CS_CLOSED && c->out_end - c->out_start < OUT_HIGH &&
           c->n_reqs < MAX_INFLIGHT &&
           (c->state < CS_REQ_HDR || !c->disk->bb->over_limit || c->held == 0);
}

static void conn_update_events(struct bb_conn *c)
{
    if (c->fd < 0 || c->dead) {
        return;
    }
    bool want_read = bb_conn_can_take(c);
    /* no RDHUP while not reading: level-triggered, it would spin the loop
     * (a full hang-up is still reported as EPOLLHUP) */
    uint32_t ev =
        (want_read ? EPOLLIN | EPOLLRDHUP : 0) | (c->out_end > c->out_start ? EPOLLOUT : 0);
    if (ev != c->events) { /* one epoll_ctl per change, not per request */
        fl_loop_mod_fd(c->disk->bb->loop, c->fd, ev);
        c->events = ev;
    }
    c->reading = want_read;
}

/* Consumes as much buffered input as the state machine can. */
static void conn_process(struct bb_conn *c)
{
    while (bb_conn_can_take(c)) {
        bool more = c->state < CS_REQ_HDR ? bb_handshake_step(c) : bb_tx_step(c);
        if (!more) {
            return;
        }
    }
}

/* Sends what is queued, then parses input left buffered while the
 * connection was over its limits, until nothing moves. */
void bb_conn_flush_out(struct bb_conn *c)
{
    for (int round = 0; round < 16 && !c->dead; round++) {
        while (c->fd >= 0 && c->out_end > c->out_start) {
            ssize_t n = send(c->fd, c->out + c->out_start, c->out_end - c->out_start,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                }
                bb_conn_fail(c);
                return;
            }
            c->out_start += (size_t)n;
            bb_account(c, -n);
        }
        if (c->out_start == c->out_end) {
            c->out_start = c->out_end = 0;
            if (c->out_alloc > KEEP_BUFFER) {
                free(c->out);
                c->out = NULL;
                c->out_alloc = 0;
            }
        }
        size_t before = c->in_start;
        if (c->in_end == c->in_start || !bb_conn_can_take(c)) {
            break;
        }
        conn_process(c);
        if (c->in_start == before) {
            break;
        }
    }
    if (c->dead || c->fd < 0) {
        return;
    }
    /* a finished conversation (ABORT, DISC) ends once everything is sent */
    if ((c->state == CS_CLOSED || (c->disc && c->n_reqs == 0)) && c->out_end == 0) {
        bb_conn_fail(c);
        return;
    }
    conn_update_events(c);
}

void bb_conn_protocol_error(struct bb_conn *c, const char *what)
{
    c->disk->st.protocol_errors++;
    FL_LOG_RL(&c->disk->rl, FL_LOG_WARN, ROOM, "%s:%s: %s; closing the connection", c->disk->node,
              c->disk->name, what);
    bb_conn_fail(c);
}

static size_t conn_need(const struct bb_conn *c)
{
    if (c->state == CS_OPT_DATA) {
        return c->opt_len;
    }
    return bb_tx_need(c);
}

static void in_make_room(struct bb_conn *c, size_t want)
{
    if (c->in_start == c->in_end) {
        c->in_start = c->in_end = 0;
        if (c->in_alloc > KEEP_BUFFER && want <= KEEP_BUFFER) {
            free(c->in);
            c->in = NULL;
            c->in_alloc = 0;
        }
    }
    if (c->in_alloc - c->in_end >= want) {
        return;
    }
    if (c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    if (c->in_alloc - c->in_end < want) {
        c->in = fl_xgrow(c->in, &c->in_alloc, c->in_end + want, 1);
    }
}

void bb_conn_fail(struct bb_conn *c)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    c->state = CS_CLOSED;
    if (c->fd >= 0) {
        fl_loop_del_fd(c->disk->bb->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_read_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct bb_conn *c = arg;
    if (events & EPOLLOUT) {
        bb_conn_flush_out(c);
    }
    if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) && c->reading) {
        for (int round = 0; round < 8 && !c->dead && !c->disc; round++) {
            size_t need = conn_need(c);
            size_t have = c->in_end - c->in_start;
            size_t want = need > have ? need - have : 0;
            in_make_room(c, FL_MAX(want, (size_t)READ_CHUNK));
            size_t space = c->in_alloc - c->in_end;
            ssize_t n = recv(fd, c->in + c->in_end, space, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    bb_conn_fail(c);
                }
                break;
            }
            if (n == 0) {
                /* client gone (possibly mid-request): pending replies are
                 * dropped; executed writes stay in the cache */
                bb_conn_fail(c);
                break;
            }
            c->in_end += (size_t)n;
            conn_process(c);
            /* replies leave before the next system call on this socket */
            bb_conn_flush_out(c);
            if (c->dead || (size_t)n < space || !bb_conn_can_take(c)) {
                break; /* a short read means the socket is drained */
            }
        }
    } else if (!c->dead && (events & (EPOLLHUP | EPOLLERR))) {
        bb_conn_fail(c);
    }
    if (!c->dead) {
        bb_conn_flush_out(c);
    }
    if (c->dead) {
        bb_conn_destroy(c);
    }
}

static struct bb_conn *conn_new(struct bb_disk *d, int fd)
{
    struct bb_conn *c = fl_xcalloc(1, sizeof(*c));
    c->disk = d;
    c->fd = fd;
    c->state = CS_CLIENT_FLAGS;
    c->next = d->conns;
    if (d->conns) {
        d->conns->prev = c;
    }
    d->conns = c;
    d->st.connections_open++;
    bb_handshake_greet(c);
    return c;
}

void bb_conn_destroy(struct bb_conn *c)
{
    if (!c) {
        return;
    }
    bb_conn_fail(c);
    while (c->reqs) {
        bb_req_free(c->reqs);
    }
    struct bb_disk *d = c->disk;
    bb_account(c, -(int64_t)(c->out_end - c->out_start));
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        d->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    d->st.connections_open--;
    bool was_socket = !c->mem;
    free(c->in);
    free(c->out);
    free(c);
    if (was_socket) {
        bb_listen_resume(d); /* a descriptor is free again */
    }
}

struct bb_conn *bb_conn_create_mem(struct bb_disk *d)
{
    struct bb_conn *c = conn_new(d, -1);
    c->mem = true;
    return c;
}

bool bb_conn_feed(struct bb_conn *c, const void *data, size_t size)
{
    if (c->dead || c->state == CS_CLOSED) {
        return false;
    }
    in_make_room(c, size);
    memcpy(c->in + c->in_end, data, size);
    c->in_end += size;
    conn_process(c);
    return !c->dead && c->state != CS_CLOSED && !c->disc;
}

void bb_conn_take_output(struct bb_conn *c, uint8_t **out, size_t *size)
{
    *size = c->out_end - c->out_start;
    *out = fl_xmalloc(*size ? *size : 1);
    memcpy(*out, c->out + c->out_start, *size);
    c->out_start = c->out_end = 0;
    bb_account(c, -(int64_t)*size);
}

bool bb_conn_closed(const struct bb_conn *c)
{
    return c->dead || c->state == CS_CLOSED || c->disc;
}

int bb_disk_attach_fd(struct bb_disk *d, int fd)
{
    if (fd < 0) {
        return -EBADF;
    }
    int e = fl_set_nonblock(fd);
    if (e == 0) {
        e = fl_set_cloexec(fd);
    }
    if (e < 0) {
        close(fd);
        return e;
    }
    struct bb_conn *c = conn_new(d, fd);
    c->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    e = fl_loop_add_fd(d->bb->loop, fd, c->events, conn_read_cb, c);
    if (e < 0) {
        c->fd = -1;
        close(fd);
        bb_conn_destroy(c);
        return e;
    }
    c->reading = true;
    bb_conn_flush_out(c);
    return 0;
}

void bb_conn_reap(struct bb_conn *c)
{
    if (c->dead && !c->mem) {
        bb_conn_destroy(c);
    }
}

void bb_wake_cb(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct blkback *bb = arg;
    for (struct bb_disk *d = bb->disks; d && !bb->over_limit; d = d->next) {
        for (struct bb_conn *c = d->conns, *next; c && !bb->over_limit; c = next) {
            next = c->next;
            if (c->fd >= 0) {
                bb_conn_flush_out(c);
                bb_conn_reap(c);
            }
        }
    }
}
