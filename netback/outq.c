/* Bounded output queue; see outq.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/core.h"
#include "netback/netback.h"
#include "netback/outq.h"

void nb_outq_init(struct nb_outq *q, size_t capacity)
{
    memset(q, 0, sizeof *q);
    q->capacity = capacity;
}

void nb_outq_free(struct nb_outq *q)
{
    free(q->ring);
    q->ring = NULL;
    q->head = q->used = 0;
    q->n_lent = 0;
}

void nb_outq_clear(struct nb_outq *q)
{
    q->head = q->used = 0;
    q->n_lent = 0;
}

bool nb_outq_lend(struct nb_outq *q, const uint8_t *encoded, size_t size)
{
    if ((q->used && !q->n_lent) || size > q->capacity - q->used) {
        return false;
    }
    struct iovec *last = q->n_lent ? &q->lent[q->n_lent - 1] : NULL;
    if (last && (const uint8_t *)last->iov_base + last->iov_len == encoded) {
        last->iov_len += size;
    } else if (q->n_lent < NB_OUTQ_LENT_MAX) {
        q->lent[q->n_lent++] = (struct iovec){(void *)encoded, size};
    } else {
        return false;
    }
    q->used += size;
    return true;
}

/* Copies the lent bytes after the first `skip` into the (empty) ring. */
static void settle_from(struct nb_outq *q, size_t skip)
{
    size_t n_lent = q->n_lent;
    q->n_lent = 0;
    q->head = 0;
    q->used = 0;
    for (size_t i = 0; i < n_lent; i++) {
        size_t len = q->lent[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        if (!q->ring) {
            q->ring = fl_xmalloc(q->capacity);
        }
        memcpy(q->ring + q->used, (const uint8_t *)q->lent[i].iov_base + skip, len - skip);
        q->used += len - skip;
        skip = 0;
    }
}

void nb_outq_settle(struct nb_outq *q)
{
    if (q->n_lent) {
        settle_from(q, 0);
    }
}

/* Sends lent bytes; whatever the socket does not take is settled. */
static long send_lent(struct nb_outq *q, int fd)
{
    struct msghdr msg = {.msg_iov = q->lent, .msg_iovlen = q->n_lent};
    ssize_t w;
    do {
        w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return -errno;
    }
    settle_from(q, w < 0 ? 0 : (size_t)w);
    return w < 0 ? -EAGAIN : w;
}

static void put(struct nb_outq *q, size_t at, const void *data, size_t size)
{
    size_t pos = (q->head + at) % q->capacity;
    size_t first = FL_MIN(size, q->capacity - pos);
    memcpy(q->ring + pos, data, first);
    memcpy(q->ring, (const uint8_t *)data + first, size - first);
}

bool nb_outq_push_flip(struct nb_outq *q, const uint8_t *frame, size_t size, size_t offset,
                       uint8_t mask)
{
    size_t need = NB_STREAM_HDR_SIZE + size;
    if (need > q->capacity - q->used) {
        return false;
    }
    nb_outq_settle(q);
    if (!q->ring) {
        /* Allocated on first use: most ports' queues stay small, but the
         * bound is what matters and a ring cannot grow in place. */
        q->ring = fl_xmalloc(q->capacity);
    }
    uint8_t hdr[NB_STREAM_HDR_SIZE] = {(uint8_t)(size >> 24), (uint8_t)(size >> 16),
                                       (uint8_t)(size >> 8), (uint8_t)size};
    put(q, q->used, hdr, sizeof hdr);
    put(q, q->used + sizeof hdr, frame, size);
    if (mask && offset < size) {
        q->ring[(q->head + q->used + sizeof hdr + offset) % q->capacity] ^= mask;
    }
    q->used += need;
    return true;
}

bool nb_outq_push(struct nb_outq *q, const uint8_t *frame, size_t size)
{
    return nb_outq_push_flip(q, frame, size, 0, 0);
}

long nb_outq_send(struct nb_outq *q, int fd)
{
    if (q->n_lent) {
        return send_lent(q, fd);
    }
    long total = 0;
    while (q->used) {
        struct iovec iov[2];
        int n = 1;
        size_t first = FL_MIN(q->used, q->capacity - q->head);
        iov[0].iov_base = q->ring + q->head;
        iov[0].iov_len = first;
        if (first < q->used) {
            iov[1].iov_base = q->ring;
            iov[1].iov_len = q->used - first;
            n = 2;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return total ? total : -EAGAIN;
            }
            return -errno;
        }
        q->head = (q->head + (size_t)w) % q->capacity;
        q->used -= (size_t)w;
        total += w;
        if (q->used == 0) {
            q->head = 0; /* keep writes contiguous */
        }
        if ((size_t)w < first + (n == 2 ? iov[1].iov_len : 0)) {
            /* Short write: the socket buffer is full. */
            return total;
        }
    }
    return total;
}
