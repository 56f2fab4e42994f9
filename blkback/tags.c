/*
 * The tag table: request tag -> trace I/O id for every acknowledged write
 * that may still be in the volatile cache, so a crash record can point at
 * the I/O record of each write it kept, lost or tore (record.c).  Open
 * addressing, tag 0 free; stale entries (written back since) are dropped
 * whenever the table would grow, by asking the cache which tags it holds.
 */
#include <stdlib.h>

#include "blkback/internal.h"

static size_t tag_hash(uint64_t tag, size_t cap)
{
    return (size_t)((tag * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (cap - 1);
}

static void tags_put_raw(struct tag_slot *t, size_t cap, uint64_t tag, int64_t id)
{
    size_t i = tag_hash(tag, cap);
    while (t[i].tag && t[i].tag != tag) {
        i = (i + 1) & (cap - 1);
    }
    t[i].tag = tag;
    t[i].io_id = id;
}

static int64_t tags_get_in(const struct tag_slot *t, size_t cap, uint64_t tag)
{
    if (!t) {
        return 0;
    }
    size_t i = tag_hash(tag, cap);
    while (t[i].tag) {
        if (t[i].tag == tag) {
            return t[i].io_id;
        }
        i = (i + 1) & (cap - 1);
    }
    return 0;
}

int64_t bb_tags_get(const struct bb_disk *d, uint64_t tag)
{
    return tags_get_in(d->tags, d->tags_cap, tag);
}

struct rebuild {
    const struct bb_disk *d;
    struct tag_slot *t;
    size_t cap, len;
};

static void keep_live(void *arg, uint64_t tag)
{
    struct rebuild *x = arg;
    int64_t id = bb_tags_get(x->d, tag);
    if (id > 0 && tags_get_in(x->t, x->cap, tag) == 0) {
        tags_put_raw(x->t, x->cap, tag, id);
        x->len++;
    }
}

/* Keeps only the tags still in the cache (after flushes and destaging
 * most entries are stale), sized for twice that. */
static void tags_rebuild(struct bb_disk *d)
{
    uint64_t recs, bytes, destaged;
    bb_cache_counts(d->cache, &recs, &bytes, &destaged);
    size_t cap = 1024;
    while (cap < 4 * recs + 64) {
        cap *= 2;
    }
    struct rebuild x = {.d = d, .t = fl_xcalloc(cap, sizeof(*x.t)), .cap = cap};
    bb_cache_for_each_tag(d->cache, keep_live, &x);
    free(d->tags);
    d->tags = x.t;
    d->tags_cap = cap;
    d->tags_len = x.len;
}

void bb_tags_put(struct bb_disk *d, uint64_t tag, int64_t id)
{
    if (!d->tags || 2 * (d->tags_len + 1) > d->tags_cap) {
        tags_rebuild(d);
        if (2 * (d->tags_len + 1) > d->tags_cap) {
            /* everything is still cached: grow */
            size_t cap = d->tags_cap * 2;
            struct tag_slot *t = fl_xcalloc(cap, sizeof(*t));
            for (size_t i = 0; i < d->tags_cap; i++) {
                if (d->tags[i].tag) {
                    tags_put_raw(t, cap, d->tags[i].tag, d->tags[i].io_id);
                }
            }
            free(d->tags);
            d->tags = t;
            d->tags_cap = cap;
        }
    }
    tags_put_raw(d->tags, d->tags_cap, tag, id);
    d->tags_len++;
}

/* The cache is empty (after a crash): forget everything. */
void bb_tags_clear(struct bb_disk *d)
{
    free(d->tags);
    d->tags = NULL;
    d->tags_cap = d->tags_len = 0;
}
