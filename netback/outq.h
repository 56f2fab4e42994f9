/*
 * A port's bounded output queue (internal to netback/): a byte ring that
 * holds frames already encoded for the stream protocol (length prefix +
 * frame), so one sendmsg() writes every queued frame at once.
 *
 *        head (next byte to send)          tail (next free byte)
 *         v                                 v
 *   [....|len|frame|len|frame|len|fra......|..........]   capacity bytes
 *
 * A frame is queued whole or not at all (the caller counts the drop); a
 * partially sent frame stays at the head until the socket takes the rest,
 * so the stream the guest reads is never cut mid-frame.
 */
#ifndef FL_NETBACK_OUTQ_H
#define FL_NETBACK_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

/* Spans lent by reference at most (see nb_outq_lend). */
#define NB_OUTQ_LENT_MAX 64

struct nb_outq {
    uint8_t *ring;
    size_t capacity;
    size_t head; /* offset of the first unsent byte */
    size_t used; /* bytes queued (in the ring, or lent) */
    /* Bytes lent by the caller instead of copied: only while the ring is
     * empty, so they come first; used == their total then. */
    struct iovec lent[NB_OUTQ_LENT_MAX];
    size_t n_lent;
};

void nb_outq_init(struct nb_outq *q, size_t capacity);
void nb_outq_free(struct nb_outq *q);
void nb_outq_clear(struct nb_outq *q);
/* Appends a length prefix and the frame.  false if it does not fit. */
bool nb_outq_push(struct nb_outq *q, const uint8_t *frame, size_t size);
/* Like nb_outq_push, then flips `mask` at byte `offset` of the queued copy
 * (corruption applied on the way out, no extra copy). */
bool nb_outq_push_flip(struct nb_outq *q, const uint8_t *frame, size_t size, size_t offset,
                       uint8_t mask);
/* Queues `size` bytes already in the stream encoding (length prefixes and
 * whole frames) by reference, without copying: the cut-through path for a
 * frame forwarded from a read buffer as it came.  Only when nothing is in
 * the ring; false (nothing queued) otherwise, or if it does not fit or too
 * many spans are lent.  The memory must stay unchanged until the next
 * nb_outq_send() or nb_outq_settle(); a push settles first, so order is
 * kept. */
bool nb_outq_lend(struct nb_outq *q, const uint8_t *encoded, size_t size);
/* Copies lent bytes into the ring (their memory is about to change). */
void nb_outq_settle(struct nb_outq *q);
/* Writes as much as the socket takes (MSG_NOSIGNAL|MSG_DONTWAIT); lent
 * bytes the socket did not take are copied into the ring.  Returns
 * bytes written (>= 0), -EAGAIN if the socket took nothing, or another
 * -errno (the connection is broken). */
long nb_outq_send(struct nb_outq *q, int fd);
static inline bool nb_outq_empty(const struct nb_outq *q)
{
    return q->used == 0;
}

#endif /* FL_NETBACK_OUTQ_H */
