/*
 * The run database writer's own structures, shared by the db-*.c files
 * only (the rest of trace/ sees struct trace_db as opaque):
 *
 *   db-records.c  the public record writers (trace_node_id() ... trace_host_error()):
 *                 check arguments, fill a record in the staging batch
 *   db-staging.c  staging batches, the queue to the writer thread, interning tables
 *   db-writer.c   the writer thread: binds records, one transaction per batch
 *   db-vtab.c     trace_frame_batch, the virtual table frame records go in through
 *   db-schema.c   every SQL text the writer runs (schema, indexes, inserts)
 *   db-open.c     open (schema, reload of an existing run), flush, close
 *   db-reader.c   the read-only opening for queries and the report
 *
 * Dependencies: db-records -> db-staging; db-writer -> db-vtab, db-schema;
 * db-open -> db-writer, db-staging, db-vtab, db-schema.  All through this
 * header; no .c includes another.
 */
#ifndef FL_TRACE_DB_INTERNAL_H
#define FL_TRACE_DB_INTERNAL_H

#include <pthread.h>

#include "trace/internal.h"

enum rec_type {
    REC_NODE,
    REC_NETWORK,
    REC_NIC,
    REC_LINK,
    REC_DISK,
    REC_RUN_BEGIN,
    REC_RUN_END,
    REC_LINK_PARAMS,
    REC_EVENT,
    REC_EVENT_END,
    REC_CHECK,
    REC_FRAME,
    REC_IO,
    REC_CRASH,
    REC_CRASH_WRITE,
    REC_HOST_ERROR,
    REC_RR_SEGMENT,
    REC_EPOCH,
    REC_TYPE_COUNT
};

#define REC_STRINGS 6
#define REC_INTS    6

struct rec {
    uint8_t type;
    union {
        struct trace_frame frame;
        struct {
            int64_t id;
            struct trace_io io;
        } io;
        struct {
            int64_t i[REC_INTS];
            uint32_t s[REC_STRINGS]; /* arena offset + 1; 0 = NULL */
        } g;
    } u;
};

struct batch {
    struct rec *recs;
    size_t len, alloc;
    char *arena;
    size_t arena_size, arena_alloc;
    int64_t first_ns; /* monotonic time of the first record */
    uint64_t seq;     /* position in the queue order */
    struct batch *next;
};

/* Interned names: small arrays searched linearly at setup time. */
struct intern {
    int64_t a, b, c; /* key ints */
    char *name;      /* key string or NULL */
};
struct intern_table {
    struct intern *v;
    size_t len, alloc;
};

struct trace_db {
    sqlite3 *conn;
    char *path;
    bool readonly;

    pthread_mutex_t mu;
    pthread_cond_t wake_writer; /* work queued, stop, or staging ages */
    pthread_cond_t progress;    /* a batch was committed */
    struct trace_thread writer;
    bool writer_waiting;

    struct batch *staging;
    struct batch *queue_head, *queue_tail;
    size_t queued;
    struct batch *free_list;
    uint64_t enqueued_seq, committed_seq;
    size_t batch_records;
    int64_t batch_interval_ns;
    struct trace_failure fail; /* sticky: once set, records are refused */

    int64_t epoch;        /* as seen by producers (trace_db_epoch) */
    int64_t writer_epoch; /* as applied by the writer thread */
    bool run_begun;

    struct intern_table nodes, networks, nics, links, disks;
    int64_t next_event, next_io, next_crash, next_host_error;

    struct trace_db_stats stats;

    /* writer-thread-only state */
    sqlite3_stmt *st[REC_TYPE_COUNT];
    /* the run of frame records trace_frame_batch shows (see below) */
    const struct batch *vt_batch;
    size_t vt_begin, vt_end;
};

/* db-schema.c: the statement each record type runs (NULL: none;
 * REC_EPOCH runs trace_epoch_shift_sql), and the time columns shifted when
 * the epoch changes. */
extern const char *const trace_insert_sql[REC_TYPE_COUNT];
extern const char trace_epoch_shift_sql[];

/* db-staging.c.  All but trace_batch_free() are called with db->mu held. */
struct batch *trace_batch_get(struct trace_db *db);
void trace_batch_free(struct batch *b);
/* Hands the staging batch to the queue. */
void trace_staging_push(struct trace_db *db);
/* Reserves one record in the staging batch; may wait (dropping mu) when
 * the queue is full.  NULL when the db is closed, failed or read-only. */
struct rec *trace_rec_new(struct trace_db *db, enum rec_type type);
/* After filling a record: pushes the batch when full. */
void trace_rec_done(struct trace_db *db);
/* Copies s into the staging arena; returns the offset + 1 (0 for NULL). */
uint32_t trace_rec_str(struct trace_db *db, const char *s);

static inline const char *trace_batch_str(const struct batch *b, uint32_t off)
{
    return off ? b->arena + off - 1 : NULL;
}

/* Interning tables: *id and the entry, or NULL. */
struct intern *trace_intern_find(struct intern_table *t, int64_t a, int64_t b, int64_t c,
                                 const char *name, int64_t *id);
/* Appends an entry; returns its id. */
int64_t trace_intern_add(struct intern_table *t, int64_t a, int64_t b, int64_t c, const char *name);
void trace_intern_free(struct intern_table *t);

/* db-writer.c: the writer thread's body (arg: the db), and the errno
 * that stands for an SQLite result code (SQLITE_FULL: ENOSPC). */
void *trace_db_writer_main(void *arg);
int trace_sqlite_errno(int rc);

/* db-vtab.c: the eponymous virtual table trace_frame_batch, registered on
 * the writer's connection, and the insert of the frame records
 * b->recs[begin, end) through it (writer thread). */
extern const sqlite3_module trace_frame_batch_module;
int trace_db_write_frames(struct trace_db *db, const struct batch *b, size_t begin, size_t end);

#endif
