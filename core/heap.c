/*
 * The one binary min-heap: the event loop's timers and impair's timer
 * queue both order entries by (key, seq) with it.
 *
 *              [0]            v[i]'s children are v[2i+1] and v[2i+2];
 *            /     \          no child is before its parent, so v[0]
 *         [1]       [2]       is the minimum.  seq breaks ties (equal
 *        /   \     /   \      keys pop first-in first-out when callers
 *      [3]  [4]  [5]  [6]     number their pushes).
 *
 * Entries are stored by value.  An owner that must remove an entry from
 * the middle (the loop disarming a timer) passes a `moved` callback and
 * learns every entry's index as it moves; impair's queue passes NULL.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/core.h"

void fl_heap_init(struct fl_heap *h, fl_heap_moved_fn *moved)
{
    h->v = NULL;
    h->len = h->alloc = 0;
    h->moved = moved;
}

void fl_heap_free(struct fl_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->len = h->alloc = 0;
}

static void put(struct fl_heap *h, size_t i, struct fl_heap_entry e)
{
    h->v[i] = e;
    if (h->moved) {
        h->moved(e.data, i);
    }
}

static void sift_up(struct fl_heap *h, size_t i, struct fl_heap_entry e)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!fl_heap_before(&e, &h->v[parent])) {
            break;
        }
        put(h, i, h->v[parent]);
        i = parent;
    }
    put(h, i, e);
}

static void sift_down(struct fl_heap *h, size_t i, struct fl_heap_entry e)
{
    size_t n = h->len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && fl_heap_before(&h->v[child + 1], &h->v[child])) {
            child++;
        }
        if (!fl_heap_before(&h->v[child], &e)) {
            break;
        }
        put(h, i, h->v[child]);
        i = child;
    }
    put(h, i, e);
}

void fl_heap_push(struct fl_heap *h, int64_t key, uint64_t seq, void *data)
{
    h->v = fl_xgrow(h->v, &h->alloc, h->len + 1, sizeof *h->v);
    struct fl_heap_entry e = {key, seq, data};
    sift_up(h, h->len++, e);
}

void fl_heap_remove(struct fl_heap *h, size_t index)
{
    struct fl_heap_entry last = h->v[--h->len];
    if (index == h->len) {
        return;
    }
    /* The last entry fills the hole; it may belong above or below it. */
    if (index > 0 && fl_heap_before(&last, &h->v[(index - 1) / 2])) {
        sift_up(h, index, last);
    } else {
        sift_down(h, index, last);
    }
}

void fl_heap_pop(struct fl_heap *h)
{
    fl_heap_remove(h, 0);
}

bool fl_heap_check(const struct fl_heap *h, struct fl_error **errp)
{
    if (h->len > h->alloc) {
        fl_error_setf(errp, EINVAL, "heap: length %zu beyond allocation %zu", h->len, h->alloc);
        return false;
    }
    for (size_t i = 1; i < h->len; i++) {
        if (fl_heap_before(&h->v[i], &h->v[(i - 1) / 2])) {
            fl_error_setf(errp, EINVAL, "heap property broken at %zu (parent %zu)", i, (i - 1) / 2);
            return false;
        }
    }
    return true;
}
