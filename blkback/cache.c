/*
 * The cache layer: the disk's volatile write cache.
 *
 * Acknowledged writes that are not durable yet are records of whole
 * 512-byte sectors.  Like a real write-back cache, a sector is cached at
 * most once: a newer write punches its range out of older records
 * (trimming or splitting them), so cached records never overlap and the
 * cache holds, per sector, only the latest value.
 *
 *   age order (FIFO, for destaging and crash reports):  r1 ─▶ r2 ─▶ r3
 *   offset order (treap, for reads and punching):       r2 < r1 < r3
 *
 *        medium (file):  |aaaaaaaa|bbbbbbbb|cccccccc|dddddddd|
 *        cache records:       [r2 ]     [ r1   ]    [r3]
 *        a read sees:    |aaaa r2 |bbbb  r1    cc r3 dddddddd|
 *
 * Fragments of one write (after splits) stay adjacent in the FIFO, so a
 * crash can decide per write.  FLUSH destages everything in age order and
 * flushes the file; FUA punches the range and writes through.  When more
 * than `limit` bytes are cached the oldest records are destaged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/layer-provider.h"

#define MAX_RECORDS 65536

struct rec {
    struct bb_cache_rec pub;  /* pub.next is the FIFO link towards newer */
    struct rec *prev;         /* FIFO link towards older */
    struct rec *left, *right; /* big records: treap */
    uint32_t prio;
    bool big;
    struct rec *hnext, *hprev; /* small records: list of their start cluster */
};

/* Records spanning at most this many clusters live in a sparse per-cluster
 * directory (found with a few array reads); longer ones in the treap. */
#define SMALL_SPAN 16u
#define DIR_CHUNK  512u

struct cache_layer {
    struct bb_layer layer;
    struct rec *oldest, *newest;
    struct rec *root;
    uint64_t n_recs, bytes, destaged, limit;
    uint64_t prio_state;
    /* records touching each BB_CLUSTER_SIZE cluster (at most 8: records do
     * not overlap and hold whole sectors), so reads and writes of clusters
     * nothing is cached in skip the offset index entirely */
    uint8_t *touch;
    uint64_t clusters;
    struct rec ***dir; /* [cluster / DIR_CHUNK][cluster % DIR_CHUNK]: small records
                          starting in that cluster; chunks allocated on demand */
    uint64_t n_big;
    struct rec **found; /* scratch for collect() */
    size_t found_alloc;
};

static struct cache_layer *cl_of(struct bb_layer *l)
{
    return container_of(l, struct cache_layer, layer);
}

static uint64_t rend(const struct rec *r)
{
    return r->pub.off + r->pub.len;
}

/* --- treap keyed by offset ------------------------------------------ */

static void t_split(struct rec *t, uint64_t key, struct rec **l, struct rec **r)
{
    /* l: off < key, r: off >= key */
    if (!t) {
        *l = *r = NULL;
    } else if (t->pub.off < key) {
        t_split(t->right, key, &t->right, r);
        *l = t;
    } else {
        t_split(t->left, key, l, &t->left);
        *r = t;
    }
}

static struct rec *t_merge(struct rec *a, struct rec *b)
{
    if (!a || !b) {
        return a ? a : b;
    }
    if (a->prio > b->prio) {
        a->right = t_merge(a->right, b);
        return a;
    }
    b->left = t_merge(a, b->left);
    return b;
}

/* Insert: descend to where n's priority puts it, split that subtree
 * around n (one walk down instead of a split and two merges of the whole
 * tree). */
static void t_insert(struct cache_layer *c, struct rec *n)
{
    uint64_t x = ++c->prio_state * UINT64_C(0x9e3779b97f4a7c15); /* treap balance only */
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    n->prio = (uint32_t)(x ^ (x >> 31));
    struct rec **pp = &c->root;
    while (*pp && (*pp)->prio >= n->prio) {
        pp = n->pub.off < (*pp)->pub.off ? &(*pp)->left : &(*pp)->right;
    }
    t_split(*pp, n->pub.off, &n->left, &n->right);
    *pp = n;
}

static void t_remove(struct cache_layer *c, struct rec *n)
{
    struct rec **pp = &c->root;
    while (*pp != n) {
        pp = n->pub.off < (*pp)->pub.off ? &(*pp)->left : &(*pp)->right;
    }
    *pp = t_merge(n->left, n->right);
    n->left = n->right = NULL;
}

/* Last record with off <= key, or NULL. */
static struct rec *t_find_le(struct rec *t, uint64_t key)
{
    struct rec *best = NULL;
    while (t) {
        if (t->pub.off <= key) {
            best = t;
            t = t->right;
        } else {
            t = t->left;
        }
    }
    return best;
}

/* First record with off > key, or NULL. */
static struct rec *t_find_gt(struct rec *t, uint64_t key)
{
    struct rec *best = NULL;
    while (t) {
        if (t->pub.off > key) {
            best = t;
            t = t->left;
        } else {
            t = t->right;
        }
    }
    return best;
}

/* First record overlapping [off, end), or NULL; iterate with t_find_gt. */
static struct rec *first_overlap(struct cache_layer *c, uint64_t off, uint64_t end)
{
    struct rec *r = t_find_le(c->root, off);
    if (!r || rend(r) <= off) {
        r = t_find_gt(c->root, off);
    }
    return r && r->pub.off < end ? r : NULL;
}

/* --- cluster touch counts ------------------------------------------------ */

static void touch_add(struct cache_layer *c, uint64_t off, uint64_t len, int delta)
{
    if (len == 0) {
        return;
    }
    uint64_t last = (off + len - 1) / BB_CLUSTER_SIZE;
    for (uint64_t i = off / BB_CLUSTER_SIZE; i <= last && i < c->clusters; i++) {
        c->touch[i] = (uint8_t)(c->touch[i] + delta);
    }
}

/* True if some record may overlap [off, end). */
static bool touched(const struct cache_layer *c, uint64_t off, uint64_t end)
{
    if (!c->oldest || end <= off) {
        return false;
    }
    uint64_t last = (end - 1) / BB_CLUSTER_SIZE;
    for (uint64_t i = off / BB_CLUSTER_SIZE; i <= last && i < c->clusters; i++) {
        if (c->touch[i]) {
            return true;
        }
    }
    return false;
}

/* --- FIFO -------------------------------------------------------------- */

static void fifo_insert_after(struct cache_layer *c, struct rec *after, struct rec *n)
{
    n->prev = after;
    n->pub.next = after ? after->pub.next : (struct bb_cache_rec *)c->oldest;
    struct rec *nx = (struct rec *)n->pub.next;
    if (after) {
        after->pub.next = &n->pub;
    } else {
        c->oldest = n;
    }
    if (nx) {
        nx->prev = n;
    } else {
        c->newest = n;
    }
}

static void fifo_remove(struct cache_layer *c, struct rec *n)
{
    struct rec *nx = (struct rec *)n->pub.next;
    if (n->prev) {
        n->prev->pub.next = n->pub.next;
    } else {
        c->oldest = nx;
    }
    if (nx) {
        nx->prev = n->prev;
    } else {
        c->newest = n->prev;
    }
}

static void rec_free(struct cache_layer *c, struct rec *r)
{
    c->n_recs--;
    if (r->pub.data) {
        c->bytes -= r->pub.len;
    }
    free(r->pub.data);
    free(r);
}

static uint64_t span_clusters(uint64_t off, uint64_t len)
{
    return (off + len - 1) / BB_CLUSTER_SIZE - off / BB_CLUSTER_SIZE + 1;
}

static struct rec **dir_slot(struct cache_layer *c, uint64_t k, bool create)
{
    struct rec **chunk = c->dir[k / DIR_CHUNK];
    if (!chunk) {
        if (!create) {
            return NULL;
        }
        chunk = c->dir[k / DIR_CHUNK] = fl_xcalloc(DIR_CHUNK, sizeof(*chunk));
    }
    return &chunk[k % DIR_CHUNK];
}

/* Puts r (with its current extent) into the index and the touch counts. */
static void index_add(struct cache_layer *c, struct rec *r)
{
    touch_add(c, r->pub.off, r->pub.len, 1);
    r->big = span_clusters(r->pub.off, r->pub.len) > SMALL_SPAN;
    if (r->big) {
        t_insert(c, r);
        c->n_big++;
        return;
    }
    struct rec **head = dir_slot(c, r->pub.off / BB_CLUSTER_SIZE, true);
    r->hprev = NULL;
    r->hnext = *head;
    if (*head) {
        (*head)->hprev = r;
    }
    *head = r;
}

static void index_del(struct cache_layer *c, struct rec *r)
{
    touch_add(c, r->pub.off, r->pub.len, -1);
    if (r->big) {
        t_remove(c, r);
        c->n_big--;
        return;
    }
    if (r->hprev) {
        r->hprev->hnext = r->hnext;
    } else {
        *dir_slot(c, r->pub.off / BB_CLUSTER_SIZE, false) = r->hnext;
    }
    if (r->hnext) {
        r->hnext->hprev = r->hprev;
    }
}

static void found_push(struct cache_layer *c, size_t *n, struct rec *r)
{
    if (*n == c->found_alloc) {
        c->found = fl_xgrow(c->found, &c->found_alloc, *n + 1, sizeof(*c->found));
    }
    c->found[(*n)++] = r;
}

/* Collects every record overlapping [off, end) into c->found; returns the
 * count.  Only small records starting at most SMALL_SPAN - 1 clusters
 * before the range can reach into it, and only through touched clusters. */
static size_t collect(struct cache_layer *c, uint64_t off, uint64_t end)
{
    size_t n = 0;
    if (!touched(c, off, end)) {
        return 0;
    }
    if (c->n_big) {
        for (struct rec *r = first_overlap(c, off, end); r && r->pub.off < end;
             r = t_find_gt(c->root, r->pub.off)) {
            found_push(c, &n, r);
        }
    }
    uint64_t kf = off / BB_CLUSTER_SIZE, kl = (end - 1) / BB_CLUSTER_SIZE;
    uint64_t k0 = kf;
    while (k0 > 0 && kf - k0 < SMALL_SPAN - 1 && c->touch[k0 - 1] && c->touch[kf]) {
        k0--;
    }
    for (uint64_t k = k0; k <= kl && k < c->clusters; k++) {
        if (!c->touch[k]) {
            continue;
        }
        struct rec **head = dir_slot(c, k, false);
        for (struct rec *r = head ? *head : NULL; r; r = r->hnext) {
            if (r->pub.off < end && rend(r) > off) {
                found_push(c, &n, r);
            }
        }
    }
    return n;
}

static void rec_drop(struct cache_layer *c, struct rec *r)
{
    index_del(c, r);
    fifo_remove(c, r);
    rec_free(c, r);
}

/* Removes [off, end) from every cached record (a newer value supersedes
 * them). */
static void punch(struct cache_layer *c, uint64_t off, uint64_t end)
{
    size_t n = collect(c, off, end);
    for (size_t i = 0; i < n; i++) {
        struct rec *r = c->found[i];
        uint64_t ro = r->pub.off, re = rend(r);
        if (off <= ro && end >= re) {
            rec_drop(c, r);
            continue;
        }
        index_del(c, r);
        if (off > ro && end < re) {
            /* split: r keeps [ro, off), a new fragment gets [end, re) */
            struct rec *tail = fl_xcalloc(1, sizeof(*tail));
            tail->pub = r->pub;
            tail->pub.off = end;
            tail->pub.len = re - end;
            if (r->pub.data) {
                tail->pub.data = fl_xmalloc(tail->pub.len);
                memcpy(tail->pub.data, r->pub.data + (end - ro), tail->pub.len);
                c->bytes -= (end - off);
                uint8_t *head = fl_xmalloc(off - ro);
                memcpy(head, r->pub.data, off - ro);
                free(r->pub.data);
                r->pub.data = head;
            }
            r->pub.len = off - ro;
            c->n_recs++;
            index_add(c, tail);
            fifo_insert_after(c, r, tail);
        } else if (off <= ro) {
            /* cut the head: r keeps [end, re) */
            uint64_t cut = end - ro;
            if (r->pub.data) {
                memmove(r->pub.data, r->pub.data + cut, re - end);
                c->bytes -= cut;
            }
            r->pub.off = end;
            r->pub.len = re - end;
        } else {
            /* cut the tail: r keeps [ro, off) */
            if (r->pub.data) {
                c->bytes -= re - off;
            }
            r->pub.len = off - ro;
        }
        index_add(c, r);
    }
}

/* Writes one record to the layer below. */
static int destage_rec(struct cache_layer *c, struct rec *r)
{
    struct bb_layer *next = c->layer.next;
    if (r->pub.data) {
        return next->ops->pwrite(next, r->pub.data, r->pub.len, r->pub.off, 0, NULL);
    }
    return next->ops->zero(next, r->pub.len, r->pub.off, r->pub.flags & BB_F_MAY_TRIM, NULL);
}

/* Writes the oldest record to the layer below and drops it.  When the
 * layer below fails (the host file system is full, an I/O error) the
 * record stays cached, still the newest value of its sectors for reads,
 * and the error is returned: an acknowledged write is never dropped. */
static int destage_oldest(struct cache_layer *c)
{
    struct rec *r = c->oldest;
    int ret = destage_rec(c, r);
    if (ret < 0) {
        return ret;
    }
    rec_drop(c, r);
    c->destaged++;
    return 0;
}

/* Destages the oldest records until `bytes` more data bytes and `recs` more
 * records fit under the limits.  Called before a write changes anything,
 * so a write the cache cannot make room for is refused whole (the host's
 * error) and changes nothing. */
static int make_room(struct cache_layer *c, uint64_t bytes, uint64_t recs)
{
    while (c->oldest && (c->bytes + bytes > c->limit || c->n_recs + recs > MAX_RECORDS)) {
        int e = destage_oldest(c);
        if (e < 0) {
            return e;
        }
    }
    return 0;
}

static int cache_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off,
                       const struct bb_io *io)
{
    struct cache_layer *c = cl_of(l);
    int ret = l->next->ops->pread(l->next, buf, len, off, io);
    uint64_t end = off + len;
    if (ret < 0) {
        return ret;
    }
    size_t n = collect(c, off, end);
    for (size_t i = 0; i < n; i++) {
        const struct rec *r = c->found[i];
        uint64_t s = FL_MAX(off, r->pub.off), e = FL_MIN(end, rend(r));
        if (r->pub.data) {
            memcpy((uint8_t *)buf + (s - off), r->pub.data + (s - r->pub.off), e - s);
        } else {
            memset((uint8_t *)buf + (s - off), 0, e - s);
        }
    }
    return 0;
}

/* Adds a sector-aligned record, taking ownership of data (NULL = zeroes).
 * On error (no room: the layer below failed) data is freed and nothing
 * changed. */
static int add_rec(struct cache_layer *c, uint8_t *data, uint64_t len, uint64_t off, unsigned flags,
                   uint64_t tag)
{
    int ret = make_room(c, data ? len : 0, 1);
    if (ret < 0) {
        free(data);
        return ret;
    }
    punch(c, off, off + len);
    struct rec *r = fl_xcalloc(1, sizeof(*r));
    r->pub.off = off;
    r->pub.len = len;
    r->pub.data = data;
    r->pub.flags = flags & BB_F_MAY_TRIM;
    r->pub.tag = tag;
    c->n_recs++;
    if (data) {
        c->bytes += len;
    }
    index_add(c, r);
    fifo_insert_after(c, c->newest, r);
    return 0;
}

static int cache_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                        unsigned flags, const struct bb_io *io)
{
    struct cache_layer *c = cl_of(l);
    if (len == 0) {
        return 0;
    }
    if (flags & BB_F_FUA) {
        /* durable now: older cached values of these bytes are superseded */
        uint64_t s = off - off % BB_SECTOR_SIZE;
        uint64_t e = (off + len + BB_SECTOR_SIZE - 1) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
        int r;
        if (s != off || e != off + len) {
            /* partial sectors: merge with the current view first */
            uint8_t *tmp = fl_xmalloc(e - s);
            r = cache_pread(l, tmp, e - s, s, NULL);
            if (r < 0) {
                free(tmp);
                return r;
            }
            memcpy(tmp + (off - s), buf, len);
            r = l->next->ops->pwrite(l->next, tmp, e - s, s, flags, io);
            free(tmp);
        } else {
            r = l->next->ops->pwrite(l->next, buf, len, off, flags, io);
        }
        /* refused below: the cached values stay the newest */
        if (r == 0) {
            punch(c, s, e);
        }
        return r;
    }
    uint64_t s = off - off % BB_SECTOR_SIZE;
    uint64_t e = (off + len + BB_SECTOR_SIZE - 1) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
    uint8_t *data = fl_xmalloc(e - s);
    if (s != off) {
        int r = cache_pread(l, data, BB_SECTOR_SIZE, s, NULL);
        if (r < 0) {
            free(data);
            return r;
        }
    }
    if (e != off + len) {
        int r = cache_pread(l, data + (e - BB_SECTOR_SIZE - s), BB_SECTOR_SIZE, e - BB_SECTOR_SIZE,
                            NULL);
        if (r < 0) {
            free(data);
            return r;
        }
    }
    memcpy(data + (off - s), buf, len);
    return add_rec(c, data, e - s, s, 0, io ? io->tag : 0);
}

static int cache_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                      const struct bb_io *io)
{
    struct cache_layer *c = cl_of(l);
    if (len == 0) {
        return 0;
    }
    uint64_t s = (off + BB_SECTOR_SIZE - 1) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
    uint64_t e = (off + len) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
    if (s >= e) {
        /* inside one or two sectors: an ordinary write of zeroes */
        uint8_t z[2 * BB_SECTOR_SIZE] = {0};
        return cache_pwrite(l, z, len, off, flags & BB_F_FUA, io);
    }
    int ret = 0;
    static const uint8_t z[BB_SECTOR_SIZE];
    if (!(flags & BB_F_FUA)) {
        /* room for both partial sectors and the zero record first, so the
         * request is refused whole or done whole */
        ret = make_room(c, 2 * BB_SECTOR_SIZE, 3);
        if (ret < 0) {
            return ret;
        }
    }
    if (s > off) {
        ret = cache_pwrite(l, z, s - off, off, flags & BB_F_FUA, io);
    }
    if (ret == 0 && off + len > e) {
        ret = cache_pwrite(l, z, off + len - e, e, flags & BB_F_FUA, io);
    }
    if (ret < 0) {
        return ret;
    }
    if (flags & BB_F_FUA) {
        ret = l->next->ops->zero(l->next, e - s, s, flags, io);
        if (ret == 0) {
            punch(c, s, e);
        }
        return ret;
    }
    return add_rec(c, NULL, e - s, s, flags, io ? io->tag : 0);
}

static int cache_flush(struct bb_layer *l, const struct bb_io *io)
{
    struct cache_layer *c = cl_of(l);
    /* in age order; a record the layer below refuses stays cached (with
     * every newer one) and the flush fails: nothing is made durable out
     * of order, nothing is dropped */
    while (c->oldest) {
        int r = destage_oldest(c);
        if (r < 0) {
            return r;
        }
    }
    return l->next->ops->flush(l->next, io);
}

static void cache_destroy(struct bb_layer *l)
{
    struct cache_layer *c = cl_of(l);
    while (c->oldest) {
        rec_drop(c, c->oldest);
    }
    for (uint64_t i = 0; i < c->clusters / DIR_CHUNK + 1; i++) {
        free(c->dir[i]);
    }
    free(c->dir);
    free(c->found);
    free(c->touch);
    free(c);
}

static const struct bb_layer_ops cache_ops = {
    .name = "cache",
    .pread = cache_pread,
    .pwrite = cache_pwrite,
    .zero = cache_zero,
    .flush = cache_flush,
    .destroy = cache_destroy,
};

struct bb_layer *bb_cache_create(struct bb_layer *next, uint64_t size, uint64_t limit_bytes)
{
    struct cache_layer *c = fl_xcalloc(1, sizeof(*c));
    c->clusters = (size + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
    c->touch = fl_xcalloc(1, (size_t)c->clusters + 1);
    c->dir = fl_xcalloc((size_t)(c->clusters / DIR_CHUNK + 1), sizeof(*c->dir));
    c->layer.ops = &cache_ops;
    c->layer.next = next;
    c->limit = limit_bytes ? limit_bytes : BB_DEFAULT_CACHE_MAX;
    return &c->layer;
}

void bb_cache_for_each_tag(struct bb_layer *l, void (*fn)(void *arg, uint64_t tag), void *arg)
{
    for (struct rec *r = cl_of(l)->oldest; r; r = (struct rec *)r->pub.next) {
        fn(arg, r->pub.tag);
    }
}

void bb_cache_counts(struct bb_layer *l, uint64_t *recs, uint64_t *bytes, uint64_t *destaged)
{
    struct cache_layer *c = cl_of(l);
    *recs = c->n_recs;
    *bytes = c->bytes;
    *destaged = c->destaged;
}

int bb_cache_crash(struct bb_layer *l, enum bb_crash_policy policy, bb_rand_fn *rnd, void *rnd_arg,
                   bb_crash_fn *fn, void *fn_arg, struct bb_crash_report *report)
{
    struct cache_layer *c = cl_of(l);
    struct bb_layer *next = l->next;
    memset(report, 0, sizeof(*report));
    report->policy = policy;
    int ret = 0;
    struct rec *r = c->oldest;
    while (r) {
        /* one write = a run of adjacent fragments with the same tag */
        uint64_t tag = r->pub.tag;
        bool whole =
            policy == BB_CRASH_KEEP || (policy == BB_CRASH_LOSE_RANDOM && (rnd(rnd_arg) & 1));
        uint64_t kept = 0, total = 0;
        struct rec *first = r;
        for (; r && r->pub.tag == tag && (r == first || tag != 0); r = (struct rec *)r->pub.next) {
            total += r->pub.len;
            int e = 0;
            if (whole) {
                e = destage_rec(c, r);
                kept += r->pub.len;
            } else if (policy == BB_CRASH_TEAR) {
                /* each sector survives with p = 1/2; write the runs that do */
                uint64_t nsec = r->pub.len / BB_SECTOR_SIZE, i = 0;
                uint64_t bits = 0;
                int have = 0;
                while (i < nsec) {
                    if (have == 0) {
                        bits = rnd(rnd_arg);
                        have = 64;
                    }
                    bool keep = bits & 1;
                    bits >>= 1;
                    have--;
                    if (!keep) {
                        i++;
                        continue;
                    }
                    uint64_t j = i + 1;
                    while (j < nsec) {
                        if (have == 0) {
                            bits = rnd(rnd_arg);
                            have = 64;
                        }
                        bool k2 = bits & 1;
                        bits >>= 1;
                        have--;
                        if (!k2) {
                            break;
                        }
                        j++;
                    }
                    uint64_t so = r->pub.off + i * BB_SECTOR_SIZE, sl = (j - i) * BB_SECTOR_SIZE;
                    if (r->pub.data) {
                        e = next->ops->pwrite(next, r->pub.data + i * BB_SECTOR_SIZE, sl, so, 0,
                                              NULL);
                    } else {
                        e = next->ops->zero(next, sl, so, r->pub.flags & BB_F_MAY_TRIM, NULL);
                    }
                    if (e < 0) {
                        break;
                    }
                    kept += sl;
                    i = j + 1; /* sector j (if any) was drawn "lost" */
                }
            }
            if (e < 0 && ret == 0) {
                ret = e;
            }
        }
        int outcome = kept == 0       ? BB_OUTCOME_LOST
                      : kept == total ? BB_OUTCOME_KEPT
                                      : BB_OUTCOME_TORN;
        report->sectors_kept += kept / BB_SECTOR_SIZE;
        report->sectors_lost += (total - kept) / BB_SECTOR_SIZE;
        if (outcome == BB_OUTCOME_KEPT) {
            report->writes_kept++;
        } else if (outcome == BB_OUTCOME_LOST) {
            report->writes_lost++;
        } else {
            report->writes_torn++;
        }
        if (fn) {
            struct bb_cache_rec summary = first->pub;
            summary.len = total;
            fn(fn_arg, &summary, outcome, kept);
        }
    }
    while (c->oldest) {
        rec_drop(c, c->oldest);
    }
    int f = next->ops->flush(next, NULL);
    return ret ? ret : f;
}

/* --- invariants (tests) ----------------------------------------------- */

static const char *check_tree(const struct rec *t, uint64_t lo, uint64_t hi, uint64_t *count)
{
    if (!t) {
        return NULL;
    }
    if (t->pub.off < lo || rend(t) > hi || t->pub.len == 0) {
        return "records overlap or are out of order";
    }
    if ((t->left && t->left->prio > t->prio) || (t->right && t->right->prio > t->prio)) {
        return "treap heap property violated";
    }
    (*count)++;
    const char *e = check_tree(t->left, lo, t->pub.off, count);
    return e ? e : check_tree(t->right, rend(t), hi, count);
}

const char *bb_cache_check(struct bb_layer *l)
{
    struct cache_layer *c = cl_of(l);
    uint64_t in_tree = 0, in_fifo = 0, in_small = 0, bytes = 0;
    const char *e = check_tree(c->root, 0, UINT64_MAX, &in_tree);
    if (e) {
        return e;
    }
    const struct rec *prev = NULL;
    for (const struct rec *r = c->oldest; r; r = (const struct rec *)r->pub.next) {
        if (r->prev != prev) {
            return "FIFO back link broken";
        }
        if (r->pub.off % BB_SECTOR_SIZE || r->pub.len % BB_SECTOR_SIZE) {
            return "record not sector aligned";
        }
        if (r->big != (span_clusters(r->pub.off, r->pub.len) > SMALL_SPAN)) {
            return "record in the wrong index for its span";
        }
        if (r->big && t_find_le(c->root, r->pub.off) != r) {
            return "big record missing from the offset tree";
        }
        if (!r->big) {
            struct rec **head = dir_slot(c, r->pub.off / BB_CLUSTER_SIZE, false);
            const struct rec *h = head ? *head : NULL;
            while (h && h != r) {
                h = h->hnext;
            }
            if (!h) {
                return "small record missing from its cluster list";
            }
            in_small++;
        }
        in_fifo++;
        bytes += r->pub.data ? r->pub.len : 0;
        prev = r;
    }
    if (prev != c->newest) {
        return "FIFO tail pointer wrong";
    }
    if (in_tree != c->n_big || in_fifo != in_tree + in_small || in_fifo != c->n_recs) {
        return "record counts disagree";
    }
    if (bytes != c->bytes) {
        return "cached byte count wrong";
    }
    uint8_t *want = fl_xcalloc(1, (size_t)c->clusters + 1);
    for (const struct rec *r = c->oldest; r; r = (const struct rec *)r->pub.next) {
        uint64_t last = (r->pub.off + r->pub.len - 1) / BB_CLUSTER_SIZE;
        for (uint64_t i = r->pub.off / BB_CLUSTER_SIZE; i <= last && i < c->clusters; i++) {
            want[i]++;
        }
    }
    bool same = memcmp(want, c->touch, (size_t)c->clusters) == 0;
    free(want);
    return same ? NULL : "cluster touch counts wrong";
}
