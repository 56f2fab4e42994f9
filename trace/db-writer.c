/*
 * The run database's writer thread: takes batches off the queue, binds
 * each record to its statement (db-schema.c) and commits one transaction
 * per batch; frame records go in by the run through db-vtab.c.  A
 * failure of the database (a full disk) fails the writer: it is kept in
 * db->fail (first error, count, records lost; logged once), later batches
 * are not written and every record writer returns -EIO.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "trace/db-internal.h"

static void bind_time(sqlite3_stmt *st, int col, int64_t mono, int64_t epoch)
{
    if (mono == TRACE_NO_TIME) {
        sqlite3_bind_null(st, col);
    } else {
        sqlite3_bind_int64(st, col, mono - epoch);
    }
}

static void bind_id(sqlite3_stmt *st, int col, int64_t id)
{
    if (id > 0) {
        sqlite3_bind_int64(st, col, id);
    } else {
        sqlite3_bind_null(st, col);
    }
}

static void bind_str(sqlite3_stmt *st, int col, const char *s)
{
    if (s) {
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, col);
    }
}

static int exec_shift(struct trace_db *db, int64_t delta)
{
    const char *sql = trace_epoch_shift_sql;
    while (*sql) {
        sqlite3_stmt *st;
        const char *tail;
        int rc = sqlite3_prepare_v2(db->conn, sql, -1, &st, &tail);
        if (rc != SQLITE_OK) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, delta);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            return rc;
        }
        sql = tail;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->conn, "UPDATE run SET epoch_mono_ns = ?1 WHERE id = 1", -1, &st,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, db->writer_epoch);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db->conn);
        sqlite3_finalize(st);
    }
    return rc;
}

static int write_rec(struct trace_db *db, const struct batch *b, const struct rec *r)
{
    int64_t ep = db->writer_epoch;
    if (r->type == REC_EPOCH) {
        int64_t new_epoch = r->u.g.i[0];
        int64_t delta = db->writer_epoch - new_epoch;
        db->writer_epoch = new_epoch;
        return exec_shift(db, delta);
    }
    sqlite3_stmt *st = db->st[r->type];
    const int64_t *i = r->u.g.i;
    const uint32_t *s = r->u.g.s;
    switch ((enum rec_type)r->type) {
    case REC_NODE:
    case REC_NETWORK:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_str(st, 2, trace_batch_str(b, s[0]));
        break;
    case REC_NIC:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_id(st, 2, i[1]);
        bind_id(st, 3, i[2]);
        bind_str(st, 4, trace_batch_str(b, s[0]));
        bind_str(st, 5, trace_batch_str(b, s[1]));
        break;
    case REC_LINK:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_id(st, 2, i[1]);
        bind_id(st, 3, i[2]);
        bind_id(st, 4, i[3]);
        break;
    case REC_DISK:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_id(st, 2, i[1]);
        bind_str(st, 3, trace_batch_str(b, s[0]));
        sqlite3_bind_int64(st, 4, i[2]);
        break;
    case REC_RUN_BEGIN: {
        for (int k = 0; k < 6; k++) {
            bind_str(st, k + 1, trace_batch_str(b, s[k]));
        }
        char seed[32];
        snprintf(seed, sizeof(seed), "%" PRIu64, (uint64_t)i[0]);
        sqlite3_bind_text(st, 7, seed, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 8, i[1]);
        break;
    }
    case REC_RUN_END:
        bind_str(st, 1, trace_batch_str(b, s[0]));
        bind_str(st, 2, trace_batch_str(b, s[1]));
        bind_time(st, 3, i[0], ep);
        break;
    case REC_LINK_PARAMS:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        bind_str(st, 3, trace_batch_str(b, s[0]));
        break;
    case REC_EVENT:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        bind_str(st, 3, trace_batch_str(b, s[0]));
        bind_id(st, 4, i[2]);
        bind_str(st, 5, trace_batch_str(b, s[1]));
        break;
    case REC_EVENT_END:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        break;
    case REC_CHECK:
        bind_str(st, 1, trace_batch_str(b, s[0]));
        bind_id(st, 2, i[0]);
        bind_str(st, 3, trace_batch_str(b, s[1]));
        sqlite3_bind_int64(st, 4, i[1]);
        bind_str(st, 5, trace_batch_str(b, s[2]));
        bind_str(st, 6, trace_batch_str(b, s[3]));
        sqlite3_bind_int64(st, 7, i[2]);
        bind_time(st, 8, i[3], ep);
        bind_time(st, 9, i[4], ep);
        break;
    case REC_IO: {
        const struct trace_io *io = &r->u.io.io;
        sqlite3_bind_int64(st, 1, r->u.io.id);
        sqlite3_bind_int64(st, 2, io->disk_id);
        bind_str(st, 3, trace_io_op_name(io->op));
        sqlite3_bind_int64(st, 4, (int64_t)io->offset);
        sqlite3_bind_int64(st, 5, (int64_t)io->length);
        bind_time(st, 6, io->submit_ns, ep);
        bind_time(st, 7, io->complete_ns, ep);
        sqlite3_bind_int64(st, 8, io->result);
        bind_str(st, 9, trace_io_fault_name(io->fault));
        sqlite3_bind_int64(st, 10, io->fua ? 1 : 0);
        break;
    }
    case REC_CRASH:
        sqlite3_bind_int64(st, 1, i[0]);
        sqlite3_bind_int64(st, 2, i[1]);
        bind_time(st, 3, i[2], ep);
        bind_str(st, 4, trace_batch_str(b, s[0]));
        break;
    case REC_CRASH_WRITE:
        sqlite3_bind_int64(st, 1, i[0]);
        sqlite3_bind_int64(st, 2, i[1]);
        bind_str(st, 3, trace_crash_outcome_name((enum trace_crash_outcome)i[2]));
        sqlite3_bind_int64(st, 4, i[3]);
        break;
    case REC_HOST_ERROR:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        bind_id(st, 3, i[2]);
        bind_id(st, 4, i[3]);
        bind_id(st, 5, i[4]);
        bind_str(st, 6, trace_batch_str(b, s[0]));  /* what */
        bind_str(st, 7, trace_batch_str(b, s[1]));  /* name */
        bind_str(st, 8, trace_batch_str(b, s[2]));  /* path */
        sqlite3_bind_int64(st, 9, i[5]);            /* errnum */
        bind_str(st, 10, trace_batch_str(b, s[3])); /* errname */
        bind_str(st, 11, trace_batch_str(b, s[4])); /* message */
        break;
    case REC_RR_SEGMENT:
        bind_id(st, 1, i[0]);
        sqlite3_bind_int64(st, 2, i[1]);
        bind_time(st, 3, i[2], ep);
        bind_time(st, 4, i[3], ep);
        bind_str(st, 5, trace_batch_str(b, s[0]));
        if (i[5]) {
            sqlite3_bind_int64(st, 6, i[4]);
        } else {
            sqlite3_bind_null(st, 6);
        }
        break;
    case REC_EPOCH:
    case REC_FRAME: /* trace_db_write_frames() */
    case REC_TYPE_COUNT:
        break;
    }
    /* every parameter is bound for every row: no clear_bindings */
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_batch_once(struct trace_db *db, const struct batch *b)
{
    int rc = sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (size_t k = 0; rc == SQLITE_OK && k < b->len;) {
        if (b->recs[k].type == REC_FRAME) {
            size_t end = k + 1;
            while (end < b->len && b->recs[end].type == REC_FRAME) {
                end++;
            }
            rc = trace_db_write_frames(db, b, k, end);
            k = end;
        } else {
            rc = write_rec(db, b, &b->recs[k++]);
        }
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* Another connection holding the write lock (an index being built by a
 * reader of an older faultline, a user's sqlite3 shell) only delays a
 * batch: it is retried until it commits.  Other errors fail the writer. */
static int write_batch(struct trace_db *db, const struct batch *b)
{
    int64_t epoch = db->writer_epoch;
    bool logged = false;
    for (;;) {
        int rc = write_batch_once(db, b);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
            return rc;
        }
        db->writer_epoch = epoch; /* the batch may have moved it */
        if (!logged) {
            fl_log(FL_LOG_WARN, "trace",
                   "%s: the database is locked by another process;"
                   " waiting to write",
                   db->path);
            logged = true;
        }
    }
}

int trace_sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_NOMEM:
        return ENOMEM;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return EROFS;
    case SQLITE_CONSTRAINT:
        return EINVAL;
    default:
        return EIO;
    }
}

void *trace_db_writer_main(void *arg)
{
    struct trace_db *db = arg;
    pthread_mutex_lock(&db->mu);
    for (;;) {
        if (!db->queue_head && db->staging && db->staging->len &&
            fl_clock_mono_ns() - db->staging->first_ns >= db->batch_interval_ns) {
            trace_staging_push(db);
        }
        if (!db->queue_head) {
            if (db->writer.stopping) {
                break;
            }
            db->writer_waiting = true;
            if (db->staging && db->staging->len) {
                int64_t deadline = db->staging->first_ns + db->batch_interval_ns;
                struct timespec ts = {deadline / FL_NS_PER_SEC, deadline % FL_NS_PER_SEC};
                pthread_cond_timedwait(&db->wake_writer, &db->mu, &ts);
            } else {
                pthread_cond_wait(&db->wake_writer, &db->mu);
            }
            db->writer_waiting = false;
            continue;
        }
        struct batch *b = db->queue_head;
        db->queue_head = b->next;
        if (!db->queue_head) {
            db->queue_tail = NULL;
        }
        pthread_mutex_unlock(&db->mu);

        /* only this thread sets fail.err: no lock needed to read it here */
        bool skip = db->fail.err != 0;
        int rc = skip ? SQLITE_OK : write_batch(db, b);

        pthread_mutex_lock(&db->mu);
        db->queued--;
        if (rc != SQLITE_OK) {
            trace_failure_note(&db->fail, trace_sqlite_errno(rc), b->len,
                               "%s: writing a batch of %zu records: %s", db->path, b->len,
                               sqlite3_errmsg(db->conn));
        } else if (skip) {
            db->fail.lost += b->len; /* after a failure, nothing more is written */
        } else {
            db->stats.committed += b->len;
            db->stats.batches++;
        }
        db->committed_seq = b->seq;
        b->next = db->free_list;
        db->free_list = b;
        pthread_cond_broadcast(&db->progress);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}
