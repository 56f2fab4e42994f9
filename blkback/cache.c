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

#include "blkback/store.h"

#define MAX_RECORDS 65536

struct rec {
    struct bb_cache_rec pub; /* pub.next is the FIFO link towards newer */
    struct rec *prev;        /* FIFO link towards older */
    struct rec *left, *right;
    uint32_t prio;
};

struct cache_layer {
    struct bb_layer layer;
    struct rec *oldest, *newest;
    struct rec *root;
    uint64_t n_recs, bytes, destaged, limit;
    uint32_t prio_state;
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

static void t_insert(struct cache_layer *c, struct rec *n)
{
    c->prio_state = c->prio_state * 1103515245u + 12345u; /* treap balance only */
    n->prio = c->prio_state ^ (c->prio_state >> 16);
    n->left = n->right = NULL;
    struct rec *l, *r;
    t_split(c->root, n->pub.off, &l, &r);
    c->root = t_merge(t_merge(l, n), r);
}

static void t_remove(struct cache_layer *c, struct rec *n)
{
    struct rec *l, *m, *r;
    t_split(c->root, n->pub.off, &l, &m);
    t_split(m, n->pub.off + 1, &m, &r);
    /* m is exactly n (offsets are unique: records never overlap) */
    c->root = t_merge(t_merge(l, t_merge(m->left, m->right)), r);
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

static void rec_drop(struct cache_layer *c, struct rec *r)
{
    t_remove(c, r);
    fifo_remove(c, r);
    rec_free(c, r);
}

/* Removes [off, end) from every cached record (a newer value supersedes
 * them). */
static void punch(struct cache_layer *c, uint64_t off, uint64_t end)
{
    struct rec *r = first_overlap(c, off, end);
    while (r) {
        struct rec *next = t_find_gt(c->root, r->pub.off);
        if (next && next->pub.off >= end) {
            next = NULL;
        }
        uint64_t ro = r->pub.off, re = rend(r);
        if (off <= ro && end >= re) {
            rec_drop(c, r);
        } else if (off > ro && end < re) {
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
            t_insert(c, tail);
            fifo_insert_after(c, r, tail);
        } else if (off <= ro) {
            /* cut the head: r keeps [end, re) */
            uint64_t cut = end - ro;
            t_remove(c, r);
            if (r->pub.data) {
                memmove(r->pub.data, r->pub.data + cut, re - end);
                c->bytes -= cut;
            }
            r->pub.off = end;
            r->pub.len = re - end;
            t_insert(c, r);
        } else {
            /* cut the tail: r keeps [ro, off) */
            if (r->pub.data) {
                c->bytes -= re - off;
            }
            r->pub.len = off - ro;
        }
        r = next;
    }
}

/* Writes one record to the layer below. */
static int destage_rec(struct cache_layer *c, struct rec *r)
{
    struct bb_layer *next = c->layer.next;
    if (r->pub.data) {
        return next->ops->pwrite(next, r->pub.data, r->pub.len, r->pub.off, 0, r->pub.tag,
                                 r->pub.submit_ns);
    }
    return next->ops->zero(next, r->pub.len, r->pub.off, r->pub.flags & BB_F_MAY_TRIM, r->pub.tag,
                           r->pub.submit_ns);
}

static int destage_oldest(struct cache_layer *c)
{
    struct rec *r = c->oldest;
    int ret = destage_rec(c, r);
    rec_drop(c, r);
    c->destaged++;
    return ret;
}

static int cache_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off)
{
    struct cache_layer *c = cl_of(l);
    int ret = l->next->ops->pread(l->next, buf, len, off);
    if (ret < 0 || !c->root) {
        return ret;
    }
    uint64_t end = off + len;
    for (struct rec *r = first_overlap(c, off, end); r && r->pub.off < end;
         r = t_find_gt(c->root, r->pub.off)) {
        uint64_t s = FL_MAX(off, r->pub.off), e = FL_MIN(end, rend(r));
        if (r->pub.data) {
            memcpy((uint8_t *)buf + (s - off), r->pub.data + (s - r->pub.off), e - s);
        } else {
            memset((uint8_t *)buf + (s - off), 0, e - s);
        }
    }
    return 0;
}

/* Adds a sector-aligned record, taking ownership of data (NULL = zeroes). */
static int add_rec(struct cache_layer *c, uint8_t *data, uint64_t len, uint64_t off, unsigned flags,
                   uint64_t tag, int64_t submit_ns)
{
    punch(c, off, off + len);
    struct rec *r = fl_xcalloc(1, sizeof(*r));
    r->pub.off = off;
    r->pub.len = len;
    r->pub.data = data;
    r->pub.flags = flags & BB_F_MAY_TRIM;
    r->pub.tag = tag;
    r->pub.submit_ns = submit_ns;
    c->n_recs++;
    if (data) {
        c->bytes += len;
    }
    t_insert(c, r);
    fifo_insert_after(c, c->newest, r);
    int ret = 0;
    while (c->oldest && (c->bytes > c->limit || c->n_recs > MAX_RECORDS)) {
        int r2 = destage_oldest(c);
        if (r2 < 0 && ret == 0) {
            ret = r2;
        }
    }
    return ret;
}

static int cache_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                        unsigned flags, uint64_t tag, int64_t submit_ns)
{
    struct cache_layer *c = cl_of(l);
    if (len == 0) {
        return 0;
    }
    if (flags & BB_F_FUA) {
        /* durable now: older cached values of these bytes are superseded */
        uint64_t s = off - off % BB_SECTOR_SIZE;
        uint64_t e = (off + len + BB_SECTOR_SIZE - 1) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
        if (s != off || e != off + len) {
            /* partial sectors: merge with the current view first */
            uint8_t *tmp = fl_xmalloc(e - s);
            int r = cache_pread(l, tmp, e - s, s);
            if (r < 0) {
                free(tmp);
                return r;
            }
            memcpy(tmp + (off - s), buf, len);
            punch(c, s, e);
            r = l->next->ops->pwrite(l->next, tmp, e - s, s, flags, tag, submit_ns);
            free(tmp);
            return r;
        }
        punch(c, s, e);
        return l->next->ops->pwrite(l->next, buf, len, off, flags, tag, submit_ns);
    }
    uint64_t s = off - off % BB_SECTOR_SIZE;
    uint64_t e = (off + len + BB_SECTOR_SIZE - 1) / BB_SECTOR_SIZE * BB_SECTOR_SIZE;
    uint8_t *data = fl_xmalloc(e - s);
    if (s != off) {
        int r = cache_pread(l, data, BB_SECTOR_SIZE, s);
        if (r < 0) {
            free(data);
            return r;
        }
    }
    if (e != off + len) {
        int r = cache_pread(l, data + (e - BB_SECTOR_SIZE - s), BB_SECTOR_SIZE, e - BB_SECTOR_SIZE);
        if (r < 0) {
            free(data);
            return r;
        }
    }
    memcpy(data + (off - s), buf, len);
    return add_rec(c, data, e - s, s, 0, tag, submit_ns);
}

static int cache_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags, uint64_t tag,
                      int64_t submit_ns)
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
        return cache_pwrite(l, z, len, off, flags & BB_F_FUA, tag, submit_ns);
    }
    int ret = 0;
    static const uint8_t z[BB_SECTOR_SIZE];
    if (s > off) {
        ret = cache_pwrite(l, z, s - off, off, flags & BB_F_FUA, tag, submit_ns);
    }
    if (ret == 0 && off + len > e) {
        ret = cache_pwrite(l, z, off + len - e, e, flags & BB_F_FUA, tag, submit_ns);
    }
    if (ret < 0) {
        return ret;
    }
    if (flags & BB_F_FUA) {
        punch(c, s, e);
        return l->next->ops->zero(l->next, e - s, s, flags, tag, submit_ns);
    }
    return add_rec(c, NULL, e - s, s, flags, tag, submit_ns);
}

static int cache_flush(struct bb_layer *l)
{
    struct cache_layer *c = cl_of(l);
    int ret = 0;
    while (c->oldest) {
        int r = destage_oldest(c);
        if (r < 0 && ret == 0) {
            ret = r;
        }
    }
    int r = l->next->ops->flush(l->next);
    return ret ? ret : r;
}

static void cache_destroy(struct bb_layer *l)
{
    struct cache_layer *c = cl_of(l);
    while (c->oldest) {
        rec_drop(c, c->oldest);
    }
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

struct bb_layer *bb_cache_create(struct bb_layer *next, uint64_t limit_bytes)
{
    struct cache_layer *c = fl_xcalloc(1, sizeof(*c));
    c->layer.ops = &cache_ops;
    c->layer.next = next;
    c->limit = limit_bytes ? limit_bytes : BB_DEFAULT_CACHE_MAX;
    c->prio_state = 0x9e3779b9u;
    return &c->layer;
}

struct bb_cache_rec *bb_cache_first(struct bb_layer *l)
{
    struct cache_layer *c = cl_of(l);
    return c->oldest ? &c->oldest->pub : NULL;
}

void bb_cache_counts(struct bb_layer *l, uint64_t *recs, uint64_t *bytes, uint64_t *destaged)
{
    struct cache_layer *c = cl_of(l);
    *recs = c->n_recs;
    *bytes = c->bytes;
    *destaged = c->destaged;
}

void bb_cache_set_io_id(struct bb_layer *l, uint64_t tag, int64_t io_id)
{
    struct cache_layer *c = cl_of(l);
    /* the write is normally among the newest records; fragments are adjacent */
    int budget = 4096;
    for (struct rec *r = c->newest; r && budget-- > 0; r = r->prev) {
        if (r->pub.tag == tag) {
            r->pub.io_id = io_id;
        }
    }
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
                                              tag, r->pub.submit_ns);
                    } else {
                        e = next->ops->zero(next, sl, so, r->pub.flags & BB_F_MAY_TRIM, tag,
                                            r->pub.submit_ns);
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
    int f = next->ops->flush(next);
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
    uint64_t in_tree = 0, in_fifo = 0, bytes = 0;
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
        if (t_find_le(c->root, r->pub.off) != r) {
            return "FIFO record missing from the offset index";
        }
        in_fifo++;
        bytes += r->pub.data ? r->pub.len : 0;
        prev = r;
    }
    if (prev != c->newest) {
        return "FIFO tail pointer wrong";
    }
    if (in_fifo != in_tree || in_fifo != c->n_recs) {
        return "record counts disagree";
    }
    if (bytes != c->bytes) {
        return "cached byte count wrong";
    }
    return NULL;
}
