/*
 * The timer queue: scheduled deliveries ordered by (time, seq).
 *
 *        push(t)                                   pop()
 *          │   t >= fifo tail?                       ▲
 *          ├── yes ─▶ fifo: sorted ring, O(1) ───────┤ min(fifo head,
 *          └── no ──▶ heap: binary min-heap, O(log n)┘     heap top)
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

#include "impair/impair-internal.h"

struct tq_entry {
    int64_t time_ns;
    uint64_t seq;
    void *data;
};

struct impair_tq {
    /* fifo: ring of fifo_alloc (a power of two) entries */
    struct tq_entry *fifo;
    size_t fifo_alloc, fifo_head, fifo_len;
    /* heap: heap[0] is the minimum */
    struct tq_entry *heap;
    size_t heap_alloc, heap_len;
    uint64_t next_seq;
};

static bool entry_before(const struct tq_entry *a, const struct tq_entry *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->seq < b->seq);
}

struct impair_tq *impair_tq_create(void)
{
    return fl_xcalloc(1, sizeof(struct impair_tq));
}

void impair_tq_destroy(struct impair_tq *tq)
{
    if (!tq) {
        return;
    }
    free(tq->fifo);
    free(tq->heap);
    free(tq);
}

size_t impair_tq_len(const struct impair_tq *tq)
{
    return tq->fifo_len + tq->heap_len;
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

static void heap_push(struct impair_tq *tq, struct tq_entry e)
{
    tq->heap = fl_xgrow(tq->heap, &tq->heap_alloc, tq->heap_len + 1, sizeof *tq->heap);
    size_t i = tq->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(&e, &tq->heap[parent])) {
            break;
        }
        tq->heap[i] = tq->heap[parent];
        i = parent;
    }
    tq->heap[i] = e;
}

static void heap_pop(struct impair_tq *tq)
{
    struct tq_entry last = tq->heap[--tq->heap_len];
    size_t n = tq->heap_len, i = 0;
    if (!n) {
        return;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct tq_entry *best = &last;
        if (l < n && entry_before(&tq->heap[l], best)) {
            m = l;
            best = &tq->heap[l];
        }
        if (r < n && entry_before(&tq->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        tq->heap[i] = tq->heap[m];
        i = m;
    }
    tq->heap[i] = last;
}

void impair_tq_push(struct impair_tq *tq, int64_t time_ns, void *data)
{
    struct tq_entry e = {time_ns, tq->next_seq++, data};
    if (tq->fifo_len == 0 || time_ns >= fifo_at(tq, tq->fifo_len - 1)->time_ns) {
        if (tq->fifo_len == tq->fifo_alloc) {
            fifo_grow(tq);
        }
        *fifo_at(tq, tq->fifo_len++) = e;
    } else {
        heap_push(tq, e);
    }
}

/* The queue holding the minimum: 1 = fifo, 2 = heap, 0 = empty. */
static int min_source(const struct impair_tq *tq)
{
    if (tq->fifo_len && tq->heap_len) {
        return entry_before(fifo_at(tq, 0), &tq->heap[0]) ? 1 : 2;
    }
    return tq->fifo_len ? 1 : tq->heap_len ? 2 : 0;
}

bool impair_tq_peek(const struct impair_tq *tq, int64_t *time_ns, void **data)
{
    int src = min_source(tq);
    if (!src) {
        return false;
    }
    const struct tq_entry *e = src == 1 ? fifo_at(tq, 0) : &tq->heap[0];
    if (time_ns) {
        *time_ns = e->time_ns;
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
    const struct tq_entry *e = src == 1 ? fifo_at(tq, 0) : &tq->heap[0];
    if (time_ns) {
        *time_ns = e->time_ns;
    }
    if (data) {
        *data = e->data;
    }
    if (src == 1) {
        tq->fifo_head = (tq->fifo_head + 1) & (tq->fifo_alloc - 1);
        tq->fifo_len--;
    } else {
        heap_pop(tq);
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
    if (tq->fifo_len > tq->fifo_alloc || tq->heap_len > tq->heap_alloc) {
        fl_error_setf(errp, EINVAL, "tq: length beyond allocation (fifo %zu/%zu, heap %zu/%zu)",
                      tq->fifo_len, tq->fifo_alloc, tq->heap_len, tq->heap_alloc);
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
            if (e->time_ns < prev->time_ns || e->seq <= prev->seq) {
                fl_error_setf(errp, EINVAL,
                              "tq: fifo not sorted at %zu: (%lld, %llu) after (%lld, %llu)", i,
                              (long long)e->time_ns, (unsigned long long)e->seq,
                              (long long)prev->time_ns, (unsigned long long)prev->seq);
                return false;
            }
        }
    }
    for (size_t i = 0; i < tq->heap_len; i++) {
        const struct tq_entry *e = &tq->heap[i];
        if (e->seq >= tq->next_seq) {
            fl_error_setf(errp, EINVAL, "tq: heap[%zu] seq %llu not below next seq %llu", i,
                          (unsigned long long)e->seq, (unsigned long long)tq->next_seq);
            return false;
        }
        if (i > 0 && entry_before(e, &tq->heap[(i - 1) / 2])) {
            fl_error_setf(errp, EINVAL, "tq: heap property broken at %zu (parent %zu)", i,
                          (i - 1) / 2);
            return false;
        }
        /* Every heap entry arrived while the fifo tail was later than it,
         * so it is never after the current fifo tail's time. */
        if (tq->fifo_len && e->time_ns > fifo_at(tq, tq->fifo_len - 1)->time_ns) {
            fl_error_setf(errp, EINVAL, "tq: heap[%zu] time %lld after the fifo tail %lld", i,
                          (long long)e->time_ns, (long long)fifo_at(tq, tq->fifo_len - 1)->time_ns);
            return false;
        }
    }
    return true;
}
