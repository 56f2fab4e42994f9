/*
 * Staging: where the record writers put their records.
 *
 *   writers ──copy──▶ staging ──(full | aged | flush)──▶ queue ──▶ writer thread
 *                       │                                           │ BEGIN
 *                       └── one mutex, held ~50 ns per record       │ INSERT × n
 *                                                                   │ COMMIT
 *                       free batches ◀──────────────────────────────┘
 *
 * Records are plain values (strings are copied into the batch's arena), so
 * the hot path never calls SQLite, allocates (once batches are recycled)
 * or makes a system call: the writer thread wakes itself for aged batches.
 * Also the interning tables (setup-time ids, searched linearly).
 */
#include <stdlib.h>
#include <string.h>

#include "trace/db-internal.h"

struct batch *trace_batch_get(struct trace_db *db)
{
    struct batch *b = db->free_list;
    if (b) {
        db->free_list = b->next;
    } else {
        b = fl_xcalloc(1, sizeof(*b));
    }
    b->len = 0;
    b->arena_size = 0;
    b->next = NULL;
    return b;
}

void trace_batch_free(struct batch *b)
{
    if (b) {
        free(b->recs);
        free(b->arena);
        free(b);
    }
}

/* Hands the staging batch to the queue.  Called with mu held. */
void trace_staging_push(struct trace_db *db)
{
    struct batch *b = db->staging;
    if (!b || b->len == 0) {
        return;
    }
    db->staging = NULL;
    b->seq = ++db->enqueued_seq;
    if (db->queue_tail) {
        db->queue_tail->next = b;
    } else {
        db->queue_head = b;
    }
    db->queue_tail = b;
    db->queued++;
    if (db->writer_waiting) {
        pthread_cond_signal(&db->wake_writer);
    }
}

/* Reserves one record in the staging batch.  Called with mu held; may
 * wait (dropping mu) when the queue is full.  Returns NULL when the db is
 * closed or failed. */
struct rec *trace_rec_new(struct trace_db *db, enum rec_type type)
{
    if (db->fail.err) {
        db->fail.lost++;
        return NULL;
    }
    if (db->writer.stopping || db->readonly) {
        return NULL;
    }
    if (!db->staging) {
        if (db->queued >= TRACE_MAX_QUEUED_BATCHES) {
            int64_t t0 = fl_clock_mono_ns();
            while (db->queued >= TRACE_MAX_QUEUED_BATCHES && !db->fail.err) {
                pthread_cond_wait(&db->progress, &db->mu);
            }
            db->stats.stall_ns += fl_clock_mono_ns() - t0;
            if (db->fail.err) {
                db->fail.lost++;
                return NULL;
            }
        }
        db->staging = trace_batch_get(db);
        db->staging->first_ns = fl_clock_mono_ns();
        if (db->writer_waiting) {
            /* the writer sleeps without a deadline when idle */
            pthread_cond_signal(&db->wake_writer);
        }
    }
    struct batch *b = db->staging;
    if (b->len == b->alloc) {
        b->recs = fl_xgrow(b->recs, &b->alloc, b->len + 1, sizeof(*b->recs));
    }
    struct rec *r = &b->recs[b->len++];
    r->type = (uint8_t)type;
    db->stats.records++;
    return r;
}

/* After filling a record: pushes the batch when full.  mu held. */
void trace_rec_done(struct trace_db *db)
{
    if (db->staging && db->staging->len >= db->batch_records) {
        trace_staging_push(db);
    }
}

/* Copies s into the staging arena; returns the offset + 1 (0 for NULL). */
uint32_t trace_rec_str(struct trace_db *db, const char *s)
{
    if (!s) {
        return 0;
    }
    struct batch *b = db->staging;
    size_t n = strlen(s) + 1;
    b->arena = fl_xgrow(b->arena, &b->arena_alloc, b->arena_size + n, 1);
    memcpy(b->arena + b->arena_size, s, n);
    uint32_t off = (uint32_t)b->arena_size + 1;
    b->arena_size += n;
    return off;
}

struct intern *trace_intern_find(struct intern_table *t, int64_t a, int64_t b, int64_t c,
                                 const char *name, int64_t *id)
{
    for (size_t i = 0; i < t->len; i++) {
        struct intern *e = &t->v[i];
        if (e->a == a && e->b == b && e->c == c &&
            ((!e->name && !name) || (e->name && name && !strcmp(e->name, name)))) {
            *id = (int64_t)i + 1;
            return e;
        }
    }
    return NULL;
}

int64_t trace_intern_add(struct intern_table *t, int64_t a, int64_t b, int64_t c, const char *name)
{
    t->v = fl_xgrow(t->v, &t->alloc, t->len + 1, sizeof(*t->v));
    t->v[t->len] = (struct intern){a, b, c, name ? fl_xstrdup(name) : NULL};
    return (int64_t)++t->len;
}

void trace_intern_free(struct intern_table *t)
{
    for (size_t i = 0; i < t->len; i++) {
        free(t->v[i].name);
    }
    free(t->v);
}
