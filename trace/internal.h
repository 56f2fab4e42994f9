/*
 * trace/'s room-wide internals: what its files share and nothing outside
 * trace/ includes (the public API is trace.h).  The run database writer's
 * own structures are in db-internal.h, for the db-*.c files only.
 */
#ifndef FL_TRACE_INTERNAL_H
#define FL_TRACE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "trace/trace.h"

/* The schema (db-schema.c).  Tables first, then the query indexes, which the
 * writer creates at close (inserting into indexed tables at hot-path rates
 * would cost the writer thread most of its time) and readers create when
 * missing (a run killed before close). */
extern const char trace_schema_sql[];
extern const char trace_index_sql[];

/*
 * Writer threads (writer-thread.c): the run.db writer and each pcap
 * writer run TRACE_WRITER_NICE levels nicer than their creator.
 */
#define TRACE_WRITER_NICE 10

/* The sticky failure record of one writer (writer-failure.c), guarded by
 * the writer's mutex. */
struct trace_failure {
    int err;           /* positive errno of the first failure; 0: none */
    char *msg;         /* its message, naming the file */
    uint64_t failures; /* failed writes (transactions, buffers, closing steps) */
    uint64_t lost;     /* records / packets that are not in the file */
};
/* Counts a failure that lost `lost` records; the first is kept and logged
 * (room "trace", error), later ones only counted. */
void trace_failure_note(struct trace_failure *f, int err, uint64_t lost, const char *fmt, ...)
    FL_PRINTF(4, 5);
/* true when nothing failed; else false, and errp (code: the first errno)
 * "<first message>; <lost> <unit> not written, <n> failed writes". */
bool trace_failure_get(const struct trace_failure *f, const char *unit, struct fl_error **errp);
/* The same, taking the writer's mutex mu for it. */
bool trace_failure_get_locked(const struct trace_failure *f, pthread_mutex_t *mu, const char *unit,
                              struct fl_error **errp);
void trace_failure_free(struct trace_failure *f);

struct trace_thread {
    pthread_t thread;
    bool started;
    bool stopping; /* guarded by the owner's mutex */
};
/* Starts main(arg) as a writer thread named `name`; false if it cannot. */
bool trace_thread_start(struct trace_thread *t, void *(*main)(void *), void *arg, const char *name);
/* With mu held: waits on progress until *done >= target (or the thread
 * is not running); then 0, or -errno of f's first failure. */
int trace_thread_wait(const struct trace_thread *t, pthread_mutex_t *mu, pthread_cond_t *progress,
                      const uint64_t *done, uint64_t target, const struct trace_failure *f);
/* Sets stopping under mu, signals wake and joins; nothing if not started. */
void trace_thread_stop(struct trace_thread *t, pthread_mutex_t *mu, pthread_cond_t *wake);

/* The connection of a db (readers use it directly; db-open.c). */
sqlite3 *trace_db_sqlite(struct trace_db *db);

/* Opens path (a run dir or a run.db) read-only for queries, creating the
 * indexes first if the file is writable.  Sets *db_path_out (caller
 * frees) to the run.db path and *run_dir_out to its directory (db-reader.c). */
struct trace_db *trace_db_open_reader(const char *run, char **db_path_out, char **run_dir_out,
                                      struct fl_error **errp);

/* The first column of the first row of sql, or dflt (also when NULL or
 * when the statement fails). */
static inline int64_t trace_sql_int(sqlite3 *conn, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    return v;
}

/* Run-clock formatting (time-format.c): "12.345678s" / "-0.5s". */
void trace_fmt_time(struct fl_buf *b, int64_t ns);
/* Duration: "850us", "12.3ms", "1.20s". */
void trace_fmt_duration(struct fl_buf *b, int64_t ns);

/* The frame selection shared by queries, the merged pcap and the report
 * (query.c).  Columns of trace_query_frames_stmt() rows: */
enum {
    FRAME_COL_ID,
    FRAME_COL_SENT,
    FRAME_COL_DELIVERED,
    FRAME_COL_SRC_NODE,
    FRAME_COL_DST_NODE,
    FRAME_COL_NETWORK,
    FRAME_COL_SRC_NIC,
    FRAME_COL_DST_NIC,
    FRAME_COL_SIZE,
    FRAME_COL_HASH,
    FRAME_COL_FATE,
    FRAME_COL_REASON,
    FRAME_COL_COPY,
    FRAME_COL_REORDERED,
    FRAME_COL_CORRUPT_OFFSET,
    FRAME_COL_CORRUPT_MASK,
    FRAME_COL_PCAP_INDEX,
    FRAME_COL_SRC_NIC_ID,
};

/* Node and disk names of q exist in the run (errors list valid names). */
bool trace_query_validate(sqlite3 *conn, const struct trace_query *q, struct fl_error **errp);
/* The frames q selects, in sent order. */
sqlite3_stmt *trace_query_frames_stmt(sqlite3 *conn, const struct trace_query *q,
                                      struct fl_error **errp);

#endif
