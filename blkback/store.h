/*
 * blkback internal: the storage model as a stack of layers, each calling
 * the next one like nbdkit filters (next->ops->pread(next, ...)):
 *
 *   capacity layer   ENOSPC when a write needs clusters beyond the limit
 *        │
 *   cache layer      volatile write cache: acknowledged, not yet durable
 *        │           (reads see it; flush/FUA/destage push it down;
 *        │            bb_cache_crash() applies a crash policy to it)
 *   file layer       the durable medium: sparse file, optionally a
 *                    copy-on-write overlay over a read-only base image
 *
 * Every layer returns 0 or -errno.  Offsets and lengths are in bytes and
 * are checked against the disk size by the caller (server.c).
 */
#ifndef FL_BLKBACK_STORE_H
#define FL_BLKBACK_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "blkback/blkback.h"
#include "core/core.h"

#define BB_F_FUA      0x1u /* make this write durable before returning */
#define BB_F_MAY_TRIM 0x2u /* zero: the range may be deallocated (TRIM, or no NO_HOLE) */

struct bb_layer;
struct bb_layer_ops {
    const char *name;
    /* All members are mandatory. */
    int (*pread)(struct bb_layer *l, void *buf, uint64_t len, uint64_t off);
    /* tag: the request's serial (for crash records); 0 = none. */
    int (*pwrite)(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off, unsigned flags,
                  uint64_t tag, int64_t submit_ns);
    int (*zero)(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags, uint64_t tag,
                int64_t submit_ns);
    int (*flush)(struct bb_layer *l);
    void (*destroy)(struct bb_layer *l);
};

struct bb_layer {
    const struct bb_layer_ops *ops;
    struct bb_layer *next; /* NULL for the bottom layer */
};

/* --- file layer ---------------------------------------------------- */

struct bb_file_config {
    const char *path;
    const char *base; /* NULL = no base */
    uint64_t size;    /* 0 = existing size */
    bool read_only;
    bool no_sync;
};
struct bb_layer *bb_file_open(const struct bb_file_config *cfg, uint64_t *size_out,
                              struct fl_error **errp);
/* Bytes allocated in the file/overlay, by cluster, for the capacity layer:
 * calls fn for every allocated cluster index. */
void bb_file_for_each_allocated(struct bb_layer *file, void (*fn)(void *arg, uint64_t cluster),
                                void *arg);

/* Deferred sync (the server's event loop must not wait for the disk):
 * with deferred on, a flush (and FUA) writes everything to the file but
 * leaves fdatasync() to the caller, who takes it with bb_file_take_sync()
 * and runs it elsewhere (a worker thread) before acknowledging.  Off by
 * default (flush syncs in place). */
void bb_file_set_deferred_sync(struct bb_layer *file, bool deferred);
/* True if a sync is owed since the last call: fdatasync(*fd) and, when
 * *map_path is set (caller frees), fdatasync of that file too. */
bool bb_file_take_sync(struct bb_layer *file, int *fd, char **map_path);
/* Takes and performs an owed sync in the calling thread.  0 or -errno. */
int bb_file_sync_now(struct bb_layer *file);

/* --- cache layer ----------------------------------------------------- */

/* One acknowledged-but-unflushed write (sector-aligned after read-modify-
 * write of partial sectors). */
struct bb_cache_rec {
    struct bb_cache_rec *next; /* towards newer */
    uint64_t off, len;         /* bytes, multiples of 512 */
    uint8_t *data;             /* NULL: zeroes (write-zeroes / trim) */
    unsigned flags;            /* BB_F_MAY_TRIM for zero records */
    uint64_t tag;              /* request serial */
    int64_t submit_ns;
};

struct bb_layer *bb_cache_create(struct bb_layer *next, uint64_t size, uint64_t limit_bytes);
/* Oldest first; NULL when empty. */
struct bb_cache_rec *bb_cache_first(struct bb_layer *cache);
void bb_cache_counts(struct bb_layer *cache, uint64_t *recs, uint64_t *bytes, uint64_t *destaged);

/* Called by bb_cache_crash() for every cached record with its outcome. */
typedef void bb_crash_fn(void *arg, const struct bb_cache_rec *rec, int outcome /* enum
                         trace_crash_outcome order: 0 lost, 1 torn, 2 kept */
                         ,
                         uint64_t kept_bytes);
#define BB_OUTCOME_LOST 0
#define BB_OUTCOME_TORN 1
#define BB_OUTCOME_KEPT 2
/* Random bits for crash choices: returns a uniformly random uint64. */
typedef uint64_t bb_rand_fn(void *arg);
/* Applies `policy` (never DEFAULT) to every cached record in order, then
 * empties the cache and flushes the layer below (so the survivors are
 * durable).  report is filled (policy included). */
int bb_cache_crash(struct bb_layer *cache, enum bb_crash_policy policy, bb_rand_fn *rnd,
                   void *rnd_arg, bb_crash_fn *fn, void *fn_arg, struct bb_crash_report *report);
/* Invariant check for tests: the offset index matches the records, the
 * counters and cluster touch counts match, records are sector aligned.  Returns NULL or a static
 * description of the first violation. */
const char *bb_cache_check(struct bb_layer *cache);

/* --- capacity layer ------------------------------------------------ */

struct bb_layer *bb_capacity_create(struct bb_layer *next, struct bb_layer *file, uint64_t size,
                                    uint64_t capacity);
void bb_capacity_set(struct bb_layer *cap, uint64_t capacity);
uint64_t bb_capacity_allocated(struct bb_layer *cap); /* bytes */

/* Destroys a whole stack from the top. */
void bb_layer_destroy_stack(struct bb_layer *top);

#endif /* FL_BLKBACK_STORE_H */
