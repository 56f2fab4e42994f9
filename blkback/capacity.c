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
#include <string.h>

#include "blkback/layer-provider.h"

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

/* Gives back the clusters a refused request claimed: `saved` is the
 * bitmap bytes of the range from before claim(). */
static void unclaim(struct cap_layer *c, uint64_t len, uint64_t off, const uint8_t *saved)
{
    if (len == 0) {
        return;
    }
    uint64_t first = off / BB_CLUSTER_SIZE, last = (off + len - 1) / BB_CLUSTER_SIZE;
    for (uint64_t i = first; i <= last; i++) {
        uint64_t b = i / 8 - first / 8;
        bool was = saved[b] & (1u << (i % 8));
        if (!was && used_test(c, i)) {
            c->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
            c->allocated--;
        }
    }
}

/* Claims [off, off+len) and runs the write below; a write the layers below
 * refuse (the host file system is full) takes no space. */
static int claim_and(struct cap_layer *c, struct bb_layer *l, const void *buf, uint64_t len,
                     uint64_t off, unsigned flags, const struct bb_io *io, bool zero)
{
    uint8_t small[64], *saved = small;
    size_t nb = 0;
    if (len > 0) {
        uint64_t first = off / BB_CLUSTER_SIZE, last = (off + len - 1) / BB_CLUSTER_SIZE;
        nb = (size_t)(last / 8 - first / 8 + 1);
        if (nb > sizeof(small)) {
            saved = fl_xmalloc(nb);
        }
        memcpy(saved, c->used + first / 8, nb);
    }
    int r = claim(c, len, off);
    if (r == 0) {
        r = zero ? l->next->ops->zero(l->next, len, off, flags, io)
                 : l->next->ops->pwrite(l->next, buf, len, off, flags, io);
        if (r < 0) {
            unclaim(c, len, off, saved);
        }
    }
    if (saved != small) {
        free(saved);
    }
    return r;
}

static int cap_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off,
                     const struct bb_io *io)
{
    return l->next->ops->pread(l->next, buf, len, off, io);
}

static int cap_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                      unsigned flags, const struct bb_io *io)
{
    return claim_and(cap_of(l), l, buf, len, off, flags, io, false);
}

static int cap_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                    const struct bb_io *io)
{
    struct cap_layer *c = cap_of(l);
    if (!(flags & BB_F_MAY_TRIM)) {
        return claim_and(c, l, NULL, len, off, flags, io, true);
    }
    /* a trim the layers below refuse frees nothing */
    int r = l->next->ops->zero(l->next, len, off, flags, io);
    if (r == 0 && len > 0) {
        uint64_t first = (off + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
        uint64_t end = (off + len) / BB_CLUSTER_SIZE;
        for (uint64_t i = first; i < end && i < c->clusters; i++) {
            if (used_test(c, i)) {
                c->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
                c->allocated--;
            }
        }
    }
    return r;
}

static int cap_flush(struct bb_layer *l, const struct bb_io *io)
{
    return l->next->ops->flush(l->next, io);
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
