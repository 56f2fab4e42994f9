/*
 * blkback internal: the storage model as a stack of layers, each calling
 * the next one like nbdkit filters (next->ops->pread(next, ...)):
 *
 *   fault layer      the request's impair decision: injected errno, one
 *        │           flipped bit in a read (like nbdkit's error filter)
 *   capacity layer   ENOSPC when a write needs clusters beyond the limit
 *        │
 *   cache layer      volatile write cache: acknowledged, not yet durable
 *        │           (reads see it; flush/FUA/destage push it down;
 *        │            bb_cache_crash() applies a crash policy to it)
 *   file layer       the durable medium: sparse file, optionally a
 *                    copy-on-write overlay over a read-only base image
 *
 * Every layer returns 0 or -errno.  Offsets and lengths are in bytes and
 * are checked against the disk size by the caller (transmission.c).  A
 * request from a client travels with a struct bb_io; the layers' own
 * traffic (destaging, crash write-back) carries none (NULL).
 */
#ifndef FL_BLKBACK_LAYER_PROVIDER_H
#define FL_BLKBACK_LAYER_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "blkback/blkback.h"
#include "core/core.h"

#define BB_F_FUA      0x1u /* make this write durable before returning */
#define BB_F_MAY_TRIM 0x2u /* zero: the range may be deallocated (TRIM, or no NO_HOLE) */

struct impair_io_decision;
struct impair_disk_params;

/* One client request as it travels down the stack. */
struct bb_io {
    uint64_t tag;                         /* the request's serial (crash records); 0 = none */
    const struct impair_io_decision *dec; /* its fault decision; NULL = none */
};

struct bb_layer;
struct bb_layer_ops {
    const char *name;
    /* All members are mandatory.  io may be NULL (the layers' own I/O). */
    int (*pread)(struct bb_layer *l, void *buf, uint64_t len, uint64_t off, const struct bb_io *io);
    int (*pwrite)(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off, unsigned flags,
                  const struct bb_io *io);
    int (*zero)(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                const struct bb_io *io);
    int (*flush)(struct bb_layer *l, const struct bb_io *io);
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

/* Host I/O errors: fn is called for every host operation on the backing
 * file (or its cowmap) that fails: path, the operation ("read", "write",
 * "zero", "fdatasync") and the positive errno.  The error is still
 * returned to the caller as usual.  NULL = nobody is told. */
typedef void bb_host_error_fn(void *arg, const char *path, const char *op, int err);
void bb_file_set_error_fn(struct bb_layer *file, bb_host_error_fn *fn, void *arg);
const char *bb_file_path(struct bb_layer *file);

/* Deferred sync (the server's event loop must not wait for the disk):
 * with a hook set, a flush (and FUA) writes everything to the file and,
 * instead of calling fdatasync() itself, tells the hook what it owes: the
 * file's fd, and the cowmap's path when that was rewritten (else NULL;
 * valid during the call).  The hook's owner runs the fdatasync elsewhere
 * (blkback's worker thread, sync.c) before acknowledging.  Without a hook
 * flush syncs in place. */
typedef void bb_sync_owed_fn(void *arg, int fd, const char *map_path);
void bb_file_set_sync_hook(struct bb_layer *file, bb_sync_owed_fn *fn, void *arg);

/* --- cache layer ----------------------------------------------------- */

/* One acknowledged-but-unflushed write (sector-aligned after read-modify-
 * write of partial sectors). */
struct bb_cache_rec {
    struct bb_cache_rec *next; /* towards newer */
    uint64_t off, len;         /* bytes, multiples of 512 */
    uint8_t *data;             /* NULL: zeroes (write-zeroes / trim) */
    unsigned flags;            /* BB_F_MAY_TRIM for zero records */
    uint64_t tag;              /* request serial */
};

struct bb_layer *bb_cache_create(struct bb_layer *next, uint64_t size, uint64_t limit_bytes);
/* Calls fn with the tag of every cached record, oldest first (fragments of
 * one write give the same tag in a row). */
void bb_cache_for_each_tag(struct bb_layer *cache, void (*fn)(void *arg, uint64_t tag), void *arg);
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

/* --- fault layer --------------------------------------------------- */

/* Applies each request's impair decision (struct bb_io.dec): its errno
 * instead of the operation, its bit flip on the data read.  Owns the
 * disk's impair state; params are copied (NULL = no faults). */
struct bb_layer *bb_fault_create(struct bb_layer *next, const struct impair_disk_params *params,
                                 uint64_t seed, uint64_t stream, struct fl_error **errp);
/* Swaps the parameters in as a transaction (impair_disk_set_params). */
bool bb_fault_set(struct bb_layer *fault, const struct impair_disk_params *params,
                  struct fl_error **errp);
/* Decides the fate of a request arriving at now_ns (off/len ignored for
 * FLUSH).  impair failing is an internal error: counted, and the request
 * gets no fault (dec: complete at now, no error); returns its -errno so
 * the caller can log it. */
int bb_fault_decide(struct bb_layer *fault, int64_t now_ns, unsigned op, uint64_t off, uint64_t len,
                    struct impair_io_decision *dec);
struct bb_fault_counts {
    uint64_t injected;        /* errno decisions applied */
    uint64_t reads_corrupted; /* bit flips applied */
    uint64_t internal;        /* impair_disk_decide() failures */
};
void bb_fault_get_counts(struct bb_layer *fault, struct bb_fault_counts *out);

/* Destroys a whole stack from the top. */
void bb_layer_destroy_stack(struct bb_layer *top);

#endif /* FL_BLKBACK_LAYER_PROVIDER_H */
