/*
 * The timer queue: scheduled deliveries ordered by (time, seq).
 *
 *        push(t)                                   pop()
 *          │   t >= fifo tail?                       ▲
 *          ├── yes ─▶ fifo: sorted ring, O(1) ───────┤ min(fifo head,
 *          └── no ──▶ heap: core's fl_heap, O(log n) ┘     heap top)
 *
 * netem's tfifo makes the same bet (sch_netem.c tfifo_enqueue): with a
 * constant delay or a rate limit, times only grow, so almost every entry
 * takes the O(1) path and the heap stays empty.  Jitter without a rate
 * sends the out-of-order entries to the heap.  seq (insertion order) breaks
 * ties, so entries with equal times pop first-in first-out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

/* An entry of either part: key is the time in ns (core/heap.c's entry, so
 * the fifo head and the heap top compare directly). */
#define tq_entry fl_heap_entry

struct impair_tq {
    /* fifo: ring of fifo_alloc (a power of two) entries */
    struct tq_entry *fifo;
    size_t fifo_alloc, fifo_head, fifo_len;
    struct fl_heap heap; /* entries that arrived before the fifo tail */
    uint64_t next_seq;
};

struct impair_tq *impair_tq_create(void)
{
    struct impair_tq *tq = fl_xcalloc(1, sizeof(struct impair_tq));
    fl_heap_init(&tq->heap, NULL);
    return tq;
}

void impair_tq_destroy(struct impair_tq *tq)
{
    if (!tq) {
        return;
    }
    free(tq->fifo);
    fl_heap_free(&tq->heap);
    free(tq);
}

size_t impair_tq_len(const struct impair_tq *tq)
{
    return tq->fifo_len + tq->heap.len;
}

static struct tq_entry *fifo_at(const struct impair_tq *tq, size_t i)
{
    return &tq->fifo[(tq->fifo_head + i) & (tq->fifo_alloc - 1)];
}

static void fifo_grow(struct impair_tq *tq)
{
    size_t alloc = tq->fifo_alloc ? tq->fifo_alloc * 2 : 64;
    struct tq_entry *ring = fl_xmalloc(alloc * sizeof *ring);
    for (size_t i = 0; i < tq->fifo_len; i++) {
        ring[i] = *fifo_at(tq, i);
    }
    free(tq->fifo);
    tq->fifo = ring;
    tq->fifo_alloc = alloc;
    tq->fifo_head = 0;
}

void impair_tq_push(struct impair_tq *tq, int64_t time_ns, void *data)
{
    uint64_t seq = tq->next_seq++;
    if (tq->fifo_len == 0 || time_ns >= fifo_at(tq, tq->fifo_len - 1)->key) {
        if (tq->fifo_len == tq->fifo_alloc) {
            fifo_grow(tq);
        }
        *fifo_at(tq, tq->fifo_len++) = (struct tq_entry){time_ns, seq, data};
    } else {
        fl_heap_push(&tq->heap, time_ns, seq, data);
    }
}

/* The queue holding the minimum: 1 = fifo, 2 = heap, 0 = empty. */
static int min_source(const struct impair_tq *tq)
{
    if (tq->fifo_len && tq->heap.len) {
        return fl_heap_before(fifo_at(tq, 0), fl_heap_top(&tq->heap)) ? 1 : 2;
    }
    return tq->fifo_len ? 1 : tq->heap.len ? 2 : 0;
}

bool impair_tq_peek(const struct impair_tq *tq, int64_t *time_ns, void **data)
{
    int src = min_source(tq);
    if (!src) {
        return false;
    }
    const struct tq_entry *e = src == 1 ? fifo_at(tq, 0) : fl_heap_top(&tq->heap);
    if (time_ns) {
        *time_ns = e->key;
    }
    if (data) {
        *data = e->data;
    }
    return true;
}

bool impair_tq_pop(struct impair_tq *tq, int64_t *time_ns, void **data)
{
    int src = min_source(tq);
    if (!src) {
        return false;
    }
    const struct tq_entry *e = src == 1 ? fifo_at(tq, 0) : fl_heap_top(&tq->heap);
    if (time_ns) {
        *time_ns = e->key;
    }
    if (data) {
        *data = e->data;
    }
    if (src == 1) {
        tq->fifo_head = (tq->fifo_head + 1) & (tq->fifo_alloc - 1);
        tq->fifo_len--;
    } else {
        fl_heap_pop(&tq->heap);
    }
    return true;
}

int64_t impair_tq_next_time(const struct impair_tq *tq)
{
    int64_t t;
    return impair_tq_peek(tq, &t, NULL) ? t : INT64_MAX;
}

bool impair_tq_check(const struct impair_tq *tq, struct fl_error **errp)
{
    if (tq->fifo_len > tq->fifo_alloc || tq->heap.len > tq->heap.alloc) {
        fl_error_setf(errp, EINVAL, "tq: length beyond allocation (fifo %zu/%zu, heap %zu/%zu)",
                      tq->fifo_len, tq->fifo_alloc, tq->heap.len, tq->heap.alloc);
        return false;
    }
    if (tq->fifo_alloc & (tq->fifo_alloc - 1)) {
        fl_error_setf(errp, EINVAL, "tq: fifo size %zu is not a power of two", tq->fifo_alloc);
        return false;
    }
    for (size_t i = 0; i < tq->fifo_len; i++) {
        const struct tq_entry *e = fifo_at(tq, i);
        if (e->seq >= tq->next_seq) {
            fl_error_setf(errp, EINVAL, "tq: fifo[%zu] seq %llu not below next seq %llu", i,
                          (unsigned long long)e->seq, (unsigned long long)tq->next_seq);
            return false;
        }
        if (i > 0) {
            const struct tq_entry *prev = fifo_at(tq, i - 1);
            if (e->key < prev->key || e->seq <= prev->seq) {
                fl_error_setf(errp, EINVAL,
                              "tq: fifo not sorted at %zu: (%lld, %llu) after (%lld, %llu)", i,
                              (long long)e->key, (unsigned long long)e->seq, (long long)prev->key,
                              (unsigned long long)prev->seq);
                return false;
            }
        }
    }
    if (!fl_heap_check(&tq->heap, errp)) {
        fl_error_prepend(errp, "tq: ");
        return false;
    }
    for (size_t i = 0; i < tq->heap.len; i++) {
        const struct tq_entry *e = &tq->heap.v[i];
        if (e->seq >= tq->next_seq) {
            fl_error_setf(errp, EINVAL, "tq: heap[%zu] seq %llu not below next seq %llu", i,
                          (unsigned long long)e->seq, (unsigned long long)tq->next_seq);
            return false;
        }
        /* Every heap entry arrived while the fifo tail was later than it,
         * so it is never after the current fifo tail's time. */
        if (tq->fifo_len && e->key > fifo_at(tq, tq->fifo_len - 1)->key) {
            fl_error_setf(errp, EINVAL, "tq: heap[%zu] time %lld after the fifo tail %lld", i,
                          (long long)e->key, (long long)fifo_at(tq, tq->fifo_len - 1)->key);
            return false;
        }
    }
    return true;
}
