/*
 * The capacity layer: a thin-provisioned disk that runs full.
 *
 * Space is counted in BB_CLUSTER_SIZE clusters, allocated on first write
 * (initially: what the backing file / overlay already holds).  A write or
 * non-trimming zero that needs clusters beyond `capacity` bytes fails with
 * ENOSPC and changes nothing; overwriting allocated clusters always works.
 * A TRIM (BB_F_MAY_TRIM) releases the clusters it covers entirely.
 * Space counts from the moment a write is acknowledged (a write later lost
 * at a crash stays counted: the pool does not know).
 */
#include <errno.h>
#include <stdlib.h>

#include "blkback/store.h"

struct cap_layer {
    struct bb_layer layer;
    uint8_t *used; /* bitmap, one bit per cluster */
    uint64_t clusters, allocated, capacity;
};

static struct cap_layer *cap_of(struct bb_layer *l)
{
    return container_of(l, struct cap_layer, layer);
}

static bool used_test(const struct cap_layer *c, uint64_t i)
{
    return c->used[i / 8] & (1u << (i % 8));
}

static void mark(void *arg, uint64_t i)
{
    struct cap_layer *c = arg;
    if (i < c->clusters && !used_test(c, i)) {
        c->used[i / 8] |= (uint8_t)(1u << (i % 8));
        c->allocated++;
    }
}

/* Allocates the clusters of [off, off+len) or fails with -ENOSPC. */
static int claim(struct cap_layer *c, uint64_t len, uint64_t off)
{
    if (len == 0) {
        return 0;
    }
    uint64_t first = off / BB_CLUSTER_SIZE, last = (off + len - 1) / BB_CLUSTER_SIZE;
    if (c->capacity) {
        uint64_t need = 0;
        for (uint64_t i = first; i <= last; i++) {
            need += !used_test(c, i);
        }
        if (need && (c->allocated + need) * BB_CLUSTER_SIZE > c->capacity) {
            return -ENOSPC;
        }
    }
    for (uint64_t i = first; i <= last; i++) {
        mark(c, i);
    }
    return 0;
}

static int cap_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off)
{
    return l->next->ops->pread(l->next, buf, len, off);
}

static int cap_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                      unsigned flags, uint64_t tag, int64_t submit_ns)
{
    int r = claim(cap_of(l), len, off);
    return r < 0 ? r : l->next->ops->pwrite(l->next, buf, len, off, flags, tag, submit_ns);
}

static int cap_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags, uint64_t tag,
                    int64_t submit_ns)
{
    struct cap_layer *c = cap_of(l);
    if (!(flags & BB_F_MAY_TRIM)) {
        int r = claim(c, len, off);
        if (r < 0) {
            return r;
        }
    } else if (len > 0) {
        uint64_t first = (off + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
        uint64_t end = (off + len) / BB_CLUSTER_SIZE;
        for (uint64_t i = first; i < end && i < c->clusters; i++) {
            if (used_test(c, i)) {
                c->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
                c->allocated--;
            }
        }
    }
    return l->next->ops->zero(l->next, len, off, flags, tag, submit_ns);
}

static int cap_flush(struct bb_layer *l)
{
    return l->next->ops->flush(l->next);
}

static void cap_destroy(struct bb_layer *l)
{
    struct cap_layer *c = cap_of(l);
    free(c->used);
    free(c);
}

static const struct bb_layer_ops cap_ops = {
    .name = "capacity",
    .pread = cap_pread,
    .pwrite = cap_pwrite,
    .zero = cap_zero,
    .flush = cap_flush,
    .destroy = cap_destroy,
};

struct bb_layer *bb_capacity_create(struct bb_layer *next, struct bb_layer *file, uint64_t size,
                                    uint64_t capacity)
{
    struct cap_layer *c = fl_xcalloc(1, sizeof(*c));
    c->layer.ops = &cap_ops;
    c->layer.next = next;
    c->clusters = (size + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
    c->used = fl_xcalloc(1, (size_t)((c->clusters + 7) / 8));
    c->capacity = capacity;
    bb_file_for_each_allocated(file, mark, c);
    return &c->layer;
}

void bb_capacity_set(struct bb_layer *l, uint64_t capacity)
{
    cap_of(l)->capacity = capacity;
}

uint64_t bb_capacity_allocated(struct bb_layer *l)
{
    return cap_of(l)->allocated * BB_CLUSTER_SIZE;
}
