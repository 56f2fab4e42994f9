/*
 * blkback/ — the paravirtual block backend: guests' disks are NBD exports
 * on unix sockets, served from files, with a model of the part of a real
 * disk that breaks databases: the volatile write cache.
 *
 *   QEMU NBD client ──unix socket (0600)──▶ listen.c ─▶ conn.c (buffers, backpressure)
 *        ▲                                              │
 *        │ reply, held until the decided                ▼
 *        │ completion time (fl_timer)       handshake.c ─▶ transmission.c
 *        │                                              │ fault decision at arrival
 *        └──────────────────────────────────────────────┤ (impair_disk_decide)
 *                                                       ▼
 *   layer stack:  fault ─▶ capacity ─▶ volatile cache ─▶ durable file (overlay ▸ base)
 *                 errno,    ENOSPC      FLUSH / FUA /       │ fdatasync on the
 *                 bit flip  beyond the  cache full          ▼ worker (sync.c)
 *                           limit       destage         host I/O errors: counted,
 *                                                       logged once, on_host_error
 *
 * Storage model (docs/blkback.md):
 *   - The backing file is the disk's durable medium.  Acknowledged writes
 *     first live in a volatile write cache (reads see them); FLUSH makes
 *     every cached write durable (pwrite + fdatasync), FUA makes that one
 *     write durable before its reply.  When the cache holds more than
 *     cache_limit bytes the oldest writes are destaged (made durable), as
 *     a real disk's cache drains by itself.
 *   - bb_disk_crash() applies a crash policy to what is still cached:
 *     keep it, lose it, lose a seeded random subset, or tear it at 512-byte
 *     sector granularity.  Afterwards the file holds what a real disk would
 *     hold after a power cut, and reads show exactly that.
 *   - Optional copy-on-write over a read-only base image (4 KiB clusters),
 *     so many nodes share one base.
 *
 * Threading: everything runs in the caller's event loop, except that
 * fdatasync() (3.7 ms p50 on ext4 here) runs on one worker thread per
 * struct blkback; FLUSH/FUA replies wait for it, nothing else does.  All
 * functions below must be called from the loop's thread.
 * Error conventions: setup paths return bool/pointer + errp; data/control
 * paths return 0 or -errno (core/core.h).
 */
#ifndef FL_BLKBACK_H
#define FL_BLKBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct impair_disk_params; /* impair/impair.h */
struct trace_db;           /* trace/trace.h */

struct blkback;
struct bb_disk;

/* Crash policies for writes still in the volatile cache at a crash. */
#define BB_CRASH_POLICIES(X)                                                                       \
    X(DEFAULT, "default", "the disk's configured policy (bb_disk_config.crash_policy)")            \
    X(KEEP, "keep", "every acknowledged write survives (the cache had drained)")                   \
    X(LOSE_UNFLUSHED, "lose-unflushed", "every write not yet flushed (or FUA) is lost")            \
    X(LOSE_RANDOM, "lose-random",                                                                  \
      "each unflushed write independently survives whole or is lost whole (p=1/2, seeded)")        \
    X(TEAR, "tear",                                                                                \
      "each 512-byte sector of each unflushed write independently survives (p=1/2, seeded): "      \
      "a multi-sector write becomes a sector-aligned mix of old and new")

enum bb_crash_policy {
#define BB_CRASH_ENUM(name, str, doc) BB_CRASH_##name,
    BB_CRASH_POLICIES(BB_CRASH_ENUM)
#undef BB_CRASH_ENUM
        BB_CRASH__COUNT
};

/* "keep", "lose-unflushed", ...  Never NULL (unknown values: "?"). */
const char *bb_crash_policy_name(enum bb_crash_policy policy);
/* Parses a policy name; on error the message quotes the value and lists
 * the valid names. */
bool bb_crash_policy_parse(const char *s, enum bb_crash_policy *out, struct fl_error **errp);

#define BB_SECTOR_SIZE       512u
#define BB_CLUSTER_SIZE      4096u       /* copy-on-write and capacity accounting unit */
#define BB_MAX_PAYLOAD       (32u << 20) /* largest READ/WRITE accepted, bytes */
#define BB_DEFAULT_CACHE_MAX (64u << 20) /* default volatile cache size, bytes */
/* Bytes held for clients across all connections of a backend (replies not
 * yet sent, stalled write payloads, read data waiting for its latency)
 * before every connection stops reading (docs/blkback.md, "Memory"). */
#define BB_DEFAULT_BUFFER_LIMIT (256u << 20)
#define BB_MIN_BUFFER_LIMIT     (1u << 20) /* smaller configured limits are raised to this */

/* A host I/O error on a disk's backing file (or its cowmap): the host file
 * system is full (ENOSPC), the device failed (EIO), ...  Strings are valid
 * during the callback only. */
struct bb_host_error {
    const char *node, *disk; /* bb_disk_config.node / .name */
    const char *path;        /* the host file that failed */
    const char *op;          /* "read", "write", "zero", "fdatasync" */
    int err;                 /* positive errno */
    uint64_t count;          /* host errors on this disk so far, this one included */
};
typedef void bb_host_error_cb(void *arg, const struct bb_host_error *e);

struct bb_config {
    uint64_t seed;          /* run seed: crash choices and impair draws derive from it */
    struct trace_db *trace; /* I/O records go here; NULL = no records */
    uint64_t buffer_limit;  /* 0 = BB_DEFAULT_BUFFER_LIMIT */
    /* Called (in the loop's thread) for every host I/O error on any disk;
     * NULL = none.  blkback already logs the first of each errno per disk. */
    bb_host_error_cb *on_host_error;
    void *on_host_error_arg;
};

struct bb_disk_config {
    const char *node;                  /* node name for records ("n1"); required */
    const char *name;                  /* disk name ("data"); required; unique per node */
    const char *path;                  /* backing file; created sparse with `size` if missing */
    const char *base;                  /* read-only base image, NULL = none: `path` is then a
                                          copy-on-write overlay (+ `path`.cowmap sidecar) */
    uint64_t size;                     /* bytes (multiple of 512); 0 = size of the existing file,
                                          else of the base; a larger size grows the file */
    const char *socket_path;           /* unix socket to listen on; NULL = only bb_disk_attach_fd.
                                          A stale socket at the path is replaced; any other file
                                          there is an error. */
    const char *export_name;           /* NBD export name; NULL = "" (the default export).
                                          Clients asking for "" or this name get this disk. */
    bool read_only;                    /* NBD_FLAG_READ_ONLY; writes get EPERM */
    enum bb_crash_policy crash_policy; /* used by BB_CRASH_DEFAULT; DEFAULT here = KEEP */
    const struct impair_disk_params *faults; /* initial faults; NULL = none (copied) */
    uint64_t capacity;    /* bytes of allocation (4 KiB clusters) before writes that
                             need new space fail with ENOSPC; 0 = unlimited */
    uint64_t cache_limit; /* volatile cache bytes before the oldest writes are
                             destaged; 0 = BB_DEFAULT_CACHE_MAX */
    bool no_sync;         /* skip fdatasync() on flush (tests on tmpfs); the model's
                             durability semantics are unchanged */
};

struct bb_disk_stats {
    uint64_t reads, writes, flushes, trims, zeroes;       /* requests completed */
    uint64_t bytes_read, bytes_written;                   /* by successful requests */
    uint64_t errors_injected;                             /* impair errno decisions */
    uint64_t errors_enospc;                               /* capacity-limit refusals */
    uint64_t errors_invalid;                              /* bounds/flags/unknown command */
    uint64_t reads_corrupted, bits_flipped;               /* read corruption */
    uint64_t cached_writes, cached_bytes;                 /* in the volatile cache now */
    uint64_t destaged_writes;                             /* drained because the cache was full */
    uint64_t crashes, crash_kept, crash_lost, crash_torn; /* writes, summed over crashes */
    uint64_t connections, connections_open, protocol_errors;
    uint64_t stalled_now;     /* requests held by a stall */
    uint64_t allocated_bytes; /* for the capacity limit */
    uint64_t errors_internal; /* impair_disk_decide() failures (request ran unfaulted) */
    uint64_t host_errors;     /* failed host operations on the backing file */
    int host_errno;           /* the last one's errno; 0 = none yet */
    uint64_t accept_pauses;   /* times accept() ran out of descriptors */
    uint64_t buffered_bytes;  /* held for clients now, whole backend */
    uint64_t backpressure;    /* times the backend reached its buffer limit */
};

/* What one crash did to the writes that were in the cache. */
struct bb_crash_report {
    enum bb_crash_policy policy; /* resolved (never DEFAULT) */
    uint64_t writes_kept, writes_lost, writes_torn;
    uint64_t sectors_kept, sectors_lost; /* over all cached writes */
};

/* Creates the backend on `loop` (which must outlive it). */
struct blkback *bb_create(struct fl_loop *loop, const struct bb_config *cfg,
                          struct fl_error **errp);
/* Removes every disk (bb_disk_remove) and frees.  Accepts NULL. */
void bb_destroy(struct blkback *bb);

/* Opens/creates the backing file, validates the configuration (errors
 * name the field and value), and starts listening.  Strings are copied. */
struct bb_disk *bb_disk_add(struct blkback *bb, const struct bb_disk_config *cfg,
                            struct fl_error **errp);
/* Clean power-down: cached writes are made durable, connections closed,
 * the socket file removed.  Accepts NULL. */
void bb_disk_remove(struct bb_disk *disk);
/* Looks a disk up by node and disk name; NULL if absent. */
struct bb_disk *bb_disk_find(struct blkback *bb, const char *node, const char *name);

/* Serves an already-connected stream socket (takes ownership of fd, even on
 * failure).  0 or -errno. */
int bb_disk_attach_fd(struct bb_disk *disk, int fd);

/* --- control API (run time) ------------------------------------------ */

/* Replaces the fault parameters as a transaction: validated by impair,
 * swapped in for requests arriving from now on; on error nothing changes.
 * NULL clears every fault. */
bool bb_disk_set_faults(struct bb_disk *disk, const struct impair_disk_params *params,
                        struct fl_error **errp);
/* Sets the capacity limit (0 = unlimited).  Already-allocated space above
 * the limit stays readable and overwritable; new allocations fail. */
void bb_disk_set_capacity(struct bb_disk *disk, uint64_t capacity);
/* stall=true: requests arriving from now on, and replies not yet sent, are
 * held; stall=false releases them in arrival order (each then still waits
 * for its decided latency, counted from arrival). */
void bb_disk_stall(struct bb_disk *disk, bool stall);
/* Power cut.  Drops every client connection (pending replies are never
 * sent), then applies `policy` (DEFAULT: the configured one) to the cached
 * writes and leaves the file as a real disk would hold it.  Records each
 * cached write's fate in the trace.  The socket keeps listening so the
 * restarted node can reconnect.  0 or -errno (I/O error on the file; the
 * cache is then emptied anyway).  report may be NULL. */
int bb_disk_crash(struct bb_disk *disk, enum bb_crash_policy policy,
                  struct bb_crash_report *report);
/* Makes every cached write durable now (as a FLUSH would: written to the
 * file; the host fdatasync follows on the worker).  0 or -errno. */
int bb_disk_flush(struct bb_disk *disk);

void bb_disk_get_stats(const struct bb_disk *disk, struct bb_disk_stats *out);
uint64_t bb_disk_size(const struct bb_disk *disk);
const char *bb_disk_socket_path(const struct bb_disk *disk); /* NULL if none */
const char *bb_disk_node(const struct bb_disk *disk);
const char *bb_disk_name(const struct bb_disk *disk);

#endif /* FL_BLKBACK_H */
