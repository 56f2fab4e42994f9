/*
 * Opening the run database for writing (schema, version check, reload of
 * the ids of an existing run), flushing and closing it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trace/db-internal.h"

static bool exec_or_error(sqlite3 *conn, const char *path, const char *sql, struct fl_error **errp)
{
    char *msg = NULL;
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: %s", path, msg ? msg : sqlite3_errmsg(conn));
        sqlite3_free(msg);
        return false;
    }
    return true;
}

/* Loads the interned rows of an existing database (appending). */
static void load_table(struct trace_db *db, struct intern_table *t, const char *sql, int nints,
                       bool has_name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t v[3] = {0, 0, 0};
        for (int k = 0; k < nints; k++) {
            v[k] = sqlite3_column_int64(st, 1 + k);
        }
        const char *name = has_name ? (const char *)sqlite3_column_text(st, 1 + nints) : NULL;
        /* ids are dense from 1 in databases this code writes */
        while ((int64_t)t->len < id - 1) {
            trace_intern_add(t, -1, -1, -1, NULL);
        }
        trace_intern_add(t, v[0], v[1], v[2], name);
    }
    sqlite3_finalize(st);
}

static bool check_version(sqlite3 *conn, const char *path, struct fl_error **errp)
{
    int64_t v = trace_sql_int(conn, "PRAGMA user_version", 0);
    if (v != 0 && v != TRACE_SCHEMA_VERSION) {
        fl_error_setf(errp, EPROTO,
                      "%s: run database schema version %" PRId64
                      " is not supported (this faultline reads version %d)",
                      path, v, TRACE_SCHEMA_VERSION);
        return false;
    }
    return true;
}

static void sqlite_config_once(void)
{
    /* No allocation statistics (nobody reads them): they cost a global
     * mutex around every malloc SQLite makes.  Only possible before
     * SQLite initializes; if something in the process already used
     * SQLite, this fails harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct trace_db *trace_db_open(const char *path, struct fl_error **errp)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_config_once);
    if (!path || !*path) {
        fl_error_setf(errp, EINVAL, "trace_db_open: empty database path");
        return NULL;
    }
    struct trace_db *db = fl_xcalloc(1, sizeof(*db));
    db->path = fl_xstrdup(path);
    db->batch_records = TRACE_DEFAULT_BATCH_RECORDS;
    db->batch_interval_ns = TRACE_DEFAULT_BATCH_INTERVAL;
    pthread_mutex_init(&db->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->wake_writer, &ca);
    pthread_cond_init(&db->progress, &ca);
    pthread_condattr_destroy(&ca);

    /* NOMUTEX: the connection is used by one thread at a time (this one
     * until the writer starts, then only the writer, then this one again
     * after the join), so SQLite's per-call locking is pure cost */
    int rc = sqlite3_open_v2(
        path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: cannot open the run database: %s", path,
                      db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        trace_db_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    char *sql = NULL;
    if (!check_version(db->conn, path, errp) ||
        !exec_or_error(db->conn, path,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                       " PRAGMA foreign_keys=OFF; PRAGMA cache_size=-32768;"
                       " PRAGMA wal_autocheckpoint=8192;",
                       errp) ||
        !exec_or_error(db->conn, path, "BEGIN", errp) ||
        !exec_or_error(db->conn, path, trace_schema_sql, errp) ||
        !exec_or_error(db->conn, path,
                       (sql = fl_xasprintf("PRAGMA user_version=%d;"
                                           " INSERT OR REPLACE INTO meta VALUES"
                                           " ('schema_version', '%d'), ('writer', 'faultline "
                                           "%s'), ('writer_pid', '%d');",
                                           TRACE_SCHEMA_VERSION, TRACE_SCHEMA_VERSION, FL_VERSION,
                                           (int)getpid())),
                       errp) ||
        !exec_or_error(db->conn, path, "COMMIT", errp)) {
        free(sql);
        trace_db_close(db);
        return NULL;
    }
    free(sql);

    load_table(db, &db->nodes, "SELECT id, name FROM nodes ORDER BY id", 0, true);
    load_table(db, &db->networks, "SELECT id, name FROM networks ORDER BY id", 0, true);
    load_table(db, &db->nics,
               "SELECT id, node_id, coalesce(network_id,0), name FROM nics ORDER BY id", 2, true);
    load_table(db, &db->links,
               "SELECT id, coalesce(network_id,0), src_node_id, dst_node_id FROM links ORDER BY id",
               3, false);
    load_table(db, &db->disks, "SELECT id, node_id, name FROM disks ORDER BY id", 1, true);
    /* nics key on (node, name) only: network is payload */
    for (size_t k = 0; k < db->nics.len; k++) {
        db->nics.v[k].b = 0;
    }
    db->next_event = trace_sql_int(db->conn, "SELECT max(id) FROM events", 0);
    db->next_io = trace_sql_int(db->conn, "SELECT max(id) FROM ios", 0);
    db->next_crash = trace_sql_int(db->conn, "SELECT max(id) FROM crashes", 0);
    db->next_host_error = trace_sql_int(db->conn, "SELECT max(id) FROM host_errors", 0);
    db->run_begun = trace_sql_int(db->conn, "SELECT scenario_name IS NOT NULL FROM run", 0) != 0;
    int64_t stored_epoch = trace_sql_int(db->conn, "SELECT epoch_mono_ns FROM run", TRACE_NO_TIME);
    db->epoch = stored_epoch != TRACE_NO_TIME ? stored_epoch : fl_clock_mono_ns();
    db->writer_epoch = db->epoch;
    if (stored_epoch == TRACE_NO_TIME) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db->conn, "UPDATE run SET epoch_mono_ns = ?1, clock_offset_ns = ?2",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, db->epoch);
            sqlite3_bind_int64(st, 2, fl_clock_real_ns() - fl_clock_mono_ns());
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }

    if (sqlite3_create_module(db->conn, "trace_frame_batch", &trace_frame_batch_module, db) !=
        SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: registering trace_frame_batch: %s", path,
                      sqlite3_errmsg(db->conn));
        trace_db_close(db);
        return NULL;
    }
    for (size_t k = 0; k < FL_ARRAY_LEN(trace_insert_sql); k++) {
        if (trace_insert_sql[k] &&
            sqlite3_prepare_v3(db->conn, trace_insert_sql[k], -1, SQLITE_PREPARE_PERSISTENT,
                               &db->st[k], NULL) != SQLITE_OK) {
            fl_error_setf(errp, EIO, "%s: preparing '%s': %s", path, trace_insert_sql[k],
                          sqlite3_errmsg(db->conn));
            trace_db_close(db);
            return NULL;
        }
    }
    if (!trace_thread_start(&db->writer, trace_db_writer_main, db, "fl-trace-db")) {
        fl_error_setf(errp, EAGAIN, "%s: cannot start the trace writer thread", path);
        trace_db_close(db);
        return NULL;
    }
    return db;
}

int trace_db_flush(struct trace_db *db)
{
    if (!db) {
        return -EINVAL;
    }
    if (db->readonly) {
        return 0;
    }
    pthread_mutex_lock(&db->mu);
    trace_staging_push(db);
    int r = trace_thread_wait(&db->writer, &db->mu, &db->progress, &db->committed_seq,
                              db->enqueued_seq, &db->fail);
    pthread_mutex_unlock(&db->mu);
    return r;
}

bool trace_db_ok(struct trace_db *db, struct fl_error **errp)
{
    if (!db) {
        fl_error_setf(errp, EINVAL, "trace_db_ok: no database");
        return false;
    }
    return trace_failure_get_locked(&db->fail, &db->mu, "records", errp);
}

/* A step of closing that writes (the writer thread is gone: no lock). */
static void close_step(struct trace_db *db, int rc, const char *what, const char *msg)
{
    if (rc != SQLITE_OK) {
        trace_failure_note(&db->fail, trace_sqlite_errno(rc), 0, "%s: %s: %s", db->path, what,
                           msg ? msg : sqlite3_errstr(rc));
    }
}

void trace_db_close(struct trace_db *db)
{
    trace_db_finish(db, NULL);
}

bool trace_db_finish(struct trace_db *db, struct fl_error **errp)
{
    if (!db) {
        return true;
    }
    if (db->writer.started) {
        trace_db_flush(db);
        trace_thread_stop(&db->writer, &db->mu, &db->wake_writer);
        char *sql = fl_xasprintf("DELETE FROM meta WHERE key = 'writer_pid';"
                                 " INSERT OR REPLACE INTO meta VALUES ('stall_ns', '%" PRId64
                                 "'), ('records', '%" PRIu64 "');",
                                 db->stats.stall_ns, db->stats.committed);
        int rc = sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
        close_step(db, rc, "writing the run's statistics", sqlite3_errmsg(db->conn));
        free(sql);
        fl_log(FL_LOG_INFO, "trace",
               "%s: %" PRIu64 " records in %" PRIu64 " transactions; writers waited %.1f ms"
               " for the database",
               db->path, db->stats.committed, db->stats.batches, (double)db->stats.stall_ns / 1e6);
        char *msg = NULL;
        rc = sqlite3_exec(db->conn, trace_index_sql, NULL, NULL, &msg);
        close_step(db, rc, "creating indexes", msg);
        sqlite3_free(msg);
        /* a checkpoint blocked by a reader (SQLITE_BUSY) loses nothing:
         * the records stay in the WAL */
        rc = sqlite3_exec(db->conn, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        close_step(db, (rc & 0xff) == SQLITE_BUSY ? SQLITE_OK : rc, "checkpointing the WAL",
                   sqlite3_errmsg(db->conn));
        if (db->fail.err) {
            struct fl_error *e = NULL;
            trace_failure_get(&db->fail, "records", &e);
            fl_log(FL_LOG_WARN, "trace", "closed: %s", e->msg);
            fl_error_free(e);
        }
    }
    for (size_t k = 0; k < FL_ARRAY_LEN(db->st); k++) {
        sqlite3_finalize(db->st[k]);
    }
    if (db->conn) {
        int rc = sqlite3_close_v2(db->conn);
        if (!db->readonly) {
            close_step(db, rc, "closing", NULL);
        }
    }
    bool ok = trace_failure_get(&db->fail, "records", errp);
    trace_failure_free(&db->fail);
    trace_batch_free(db->staging);
    while (db->queue_head) {
        struct batch *b = db->queue_head;
        db->queue_head = b->next;
        trace_batch_free(b);
    }
    while (db->free_list) {
        struct batch *b = db->free_list;
        db->free_list = b->next;
        trace_batch_free(b);
    }
    trace_intern_free(&db->nodes);
    trace_intern_free(&db->networks);
    trace_intern_free(&db->nics);
    trace_intern_free(&db->links);
    trace_intern_free(&db->disks);
    pthread_cond_destroy(&db->wake_writer);
    pthread_cond_destroy(&db->progress);
    pthread_mutex_destroy(&db->mu);
    free(db->path);
    free(db);
    return ok;
}

int trace_db_set_batch(struct trace_db *db, size_t records, int64_t interval_ns)
{
    if (!db || records < 1 || interval_ns < FL_NS_PER_MS) {
        return -EINVAL;
    }
    pthread_mutex_lock(&db->mu);
    db->batch_records = records;
    db->batch_interval_ns = interval_ns;
    pthread_mutex_unlock(&db->mu);
    return 0;
}

void trace_db_get_stats(struct trace_db *db, struct trace_db_stats *stats)
{
    pthread_mutex_lock(&db->mu);
    *stats = db->stats;
    pthread_mutex_unlock(&db->mu);
}

sqlite3 *trace_db_sqlite(struct trace_db *db)
{
    return db->conn;
}
