/*
 * The run database writer: schema, interning, staging batches and the
 * writer thread.
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
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trace/db-internal.h"

/* ------------------------------------------------------------------ */
/* Schema                                                              */
/* ------------------------------------------------------------------ */

const char trace_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);\n"
    "CREATE TABLE IF NOT EXISTS run(\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1), scenario_name TEXT, scenario_path TEXT,\n"
    "  scenario_text TEXT, seed TEXT, faultline_version TEXT, host TEXT, accel TEXT,\n"
    "  started_wall_ns INTEGER, epoch_mono_ns INTEGER, clock_offset_ns INTEGER,\n"
    "  ended_ns INTEGER,\n"
    "  verdict TEXT, verdict_detail TEXT);\n"
    "INSERT OR IGNORE INTO run(id) VALUES (1);\n"
    "CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
    "CREATE TABLE IF NOT EXISTS networks(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
    "CREATE TABLE IF NOT EXISTS nics(id INTEGER PRIMARY KEY,\n"
    "  node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  network_id INTEGER REFERENCES networks(id), name TEXT NOT NULL, mac TEXT,\n"
    "  UNIQUE (node_id, name));\n"
    "CREATE TABLE IF NOT EXISTS links(id INTEGER PRIMARY KEY,\n"
    "  network_id INTEGER REFERENCES networks(id),\n"
    "  src_node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  dst_node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  UNIQUE (network_id, src_node_id, dst_node_id));\n"
    "CREATE TABLE IF NOT EXISTS link_params(link_id INTEGER NOT NULL REFERENCES links(id),\n"
    "  t_ns INTEGER, params TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t_ns INTEGER, end_ns INTEGER,\n"
    "  kind TEXT NOT NULL, node_id INTEGER REFERENCES nodes(id), detail TEXT);\n"
    "CREATE TABLE IF NOT EXISTS checks(id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
    "  node_id INTEGER REFERENCES nodes(id), command TEXT, exit_status INTEGER,\n"
    "  stdout TEXT, stderr TEXT, passed INTEGER NOT NULL, start_ns INTEGER, end_ns INTEGER);\n"
    "CREATE TABLE IF NOT EXISTS frames(id INTEGER PRIMARY KEY, sent_ns INTEGER NOT NULL,\n"
    "  delivered_ns INTEGER, link_id INTEGER NOT NULL REFERENCES links(id),\n"
    "  src_nic_id INTEGER REFERENCES nics(id), dst_nic_id INTEGER REFERENCES nics(id),\n"
    "  size INTEGER NOT NULL, hash INTEGER NOT NULL, fate TEXT NOT NULL, reason TEXT,\n"
    "  copy INTEGER NOT NULL, reordered INTEGER NOT NULL, corrupt_offset INTEGER,\n"
    "  corrupt_mask INTEGER, pcap_index INTEGER);\n"
    "CREATE TABLE IF NOT EXISTS disks(id INTEGER PRIMARY KEY,\n"
    "  node_id INTEGER NOT NULL REFERENCES nodes(id), name TEXT NOT NULL,\n"
    "  size_bytes INTEGER, UNIQUE (node_id, name));\n"
    "CREATE TABLE IF NOT EXISTS ios(id INTEGER PRIMARY KEY,\n"
    "  disk_id INTEGER NOT NULL REFERENCES disks(id), op TEXT NOT NULL,\n"
    "  offset INTEGER NOT NULL, length INTEGER NOT NULL, submit_ns INTEGER NOT NULL,\n"
    "  complete_ns INTEGER, result INTEGER NOT NULL, fault TEXT NOT NULL, fua INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS crashes(id INTEGER PRIMARY KEY,\n"
    "  disk_id INTEGER NOT NULL REFERENCES disks(id), t_ns INTEGER, policy TEXT);\n"
    "CREATE TABLE IF NOT EXISTS crash_writes(crash_id INTEGER NOT NULL REFERENCES crashes(id),\n"
    "  io_id INTEGER NOT NULL REFERENCES ios(id), outcome TEXT NOT NULL,\n"
    "  kept_bytes INTEGER NOT NULL);\n"
    "CREATE VIEW IF NOT EXISTS frames_named AS SELECT f.*, sn.name AS src_node,\n"
    "  dn.name AS dst_node, nw.name AS network,\n"
    "  f.delivered_ns - f.sent_ns AS delay_ns\n"
    "  FROM frames f JOIN links l ON l.id = f.link_id\n"
    "  JOIN nodes sn ON sn.id = l.src_node_id JOIN nodes dn ON dn.id = l.dst_node_id\n"
    "  LEFT JOIN networks nw ON nw.id = l.network_id;\n"
    "CREATE VIEW IF NOT EXISTS ios_named AS SELECT i.*, n.name AS node, d.name AS disk,\n"
    "  i.complete_ns - i.submit_ns AS latency_ns\n"
    "  FROM ios i JOIN disks d ON d.id = i.disk_id JOIN nodes n ON n.id = d.node_id;\n";

const char trace_index_sql[] =
    "CREATE INDEX IF NOT EXISTS frames_by_link_time ON frames(link_id, sent_ns);\n"
    "CREATE INDEX IF NOT EXISTS frames_by_time ON frames(sent_ns);\n"
    "CREATE INDEX IF NOT EXISTS frames_by_fate ON frames(fate, reason);\n"
    "CREATE INDEX IF NOT EXISTS ios_by_disk_time ON ios(disk_id, submit_ns);\n"
    "CREATE INDEX IF NOT EXISTS events_by_time ON events(t_ns);\n"
    "CREATE INDEX IF NOT EXISTS link_params_by_link ON link_params(link_id, t_ns);\n"
    "CREATE INDEX IF NOT EXISTS crash_writes_by_crash ON crash_writes(crash_id, io_id);\n";

/* ------------------------------------------------------------------ */
/* Records and batches                                                 */
/* ------------------------------------------------------------------ */

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
    REC_EPOCH,
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
    pthread_t thread;
    bool thread_started;
    bool stopping;
    bool writer_waiting;

    struct batch *staging;
    struct batch *queue_head, *queue_tail;
    size_t queued;
    struct batch *free_list;
    uint64_t enqueued_seq, committed_seq;
    size_t batch_records;
    int64_t batch_interval_ns;
    int failed; /* positive errno once the writer thread failed */

    int64_t epoch;        /* as seen by producers (trace_db_epoch) */
    int64_t writer_epoch; /* as applied by the writer thread */
    bool run_begun;

    struct intern_table nodes, networks, nics, links, disks;
    int64_t next_event, next_io, next_crash;

    struct trace_db_stats stats;

    /* writer-thread-only state */
    sqlite3_stmt *st[REC_EPOCH + 1];
    /* the run of frame records trace_frame_batch shows (see below) */
    const struct batch *vt_batch;
    size_t vt_begin, vt_end;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int64_t mono_now(void)
{
    return fl_clock_mono_ns();
}

static struct batch *batch_get(struct trace_db *db)
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

static void batch_free(struct batch *b)
{
    if (b) {
        free(b->recs);
        free(b->arena);
        free(b);
    }
}

/* Hands the staging batch to the queue.  Called with mu held. */
static void staging_push(struct trace_db *db)
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
static struct rec *rec_new(struct trace_db *db, enum rec_type type)
{
    if (db->failed || db->stopping || db->readonly) {
        return NULL;
    }
    if (!db->staging) {
        if (db->queued >= TRACE_MAX_QUEUED_BATCHES) {
            int64_t t0 = mono_now();
            while (db->queued >= TRACE_MAX_QUEUED_BATCHES && !db->failed) {
                pthread_cond_wait(&db->progress, &db->mu);
            }
            db->stats.stall_ns += mono_now() - t0;
            if (db->failed) {
                return NULL;
            }
        }
        db->staging = batch_get(db);
        db->staging->first_ns = mono_now();
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
static void rec_done(struct trace_db *db)
{
    if (db->staging && db->staging->len >= db->batch_records) {
        staging_push(db);
    }
}

/* Copies s into the staging arena; returns the offset + 1 (0 for NULL). */
static uint32_t rec_str(struct trace_db *db, const char *s)
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

static const char *batch_str(const struct batch *b, uint32_t off)
{
    return off ? b->arena + off - 1 : NULL;
}

static struct intern *intern_find(struct intern_table *t, int64_t a, int64_t b, int64_t c,
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

static int64_t intern_add(struct intern_table *t, int64_t a, int64_t b, int64_t c, const char *name)
{
    t->v = fl_xgrow(t->v, &t->alloc, t->len + 1, sizeof(*t->v));
    t->v[t->len] = (struct intern){a, b, c, name ? fl_xstrdup(name) : NULL};
    return (int64_t)++t->len;
}

static void intern_free(struct intern_table *t)
{
    for (size_t i = 0; i < t->len; i++) {
        free(t->v[i].name);
    }
    free(t->v);
}

static bool valid_name(const char *s)
{
    return s && *s;
}

/* ------------------------------------------------------------------ */
/* Writer thread                                                       */
/* ------------------------------------------------------------------ */

static const char *const insert_sql[] = {
    [REC_NODE] = "INSERT INTO nodes(id, name) VALUES (?1, ?2)",
    [REC_NETWORK] = "INSERT INTO networks(id, name) VALUES (?1, ?2)",
    [REC_NIC] = "INSERT INTO nics(id, node_id, network_id, name, mac) VALUES (?1,?2,?3,?4,?5)",
    [REC_LINK] = "INSERT INTO links(id, network_id, src_node_id, dst_node_id) VALUES (?1,?2,?3,?4)",
    [REC_DISK] = "INSERT INTO disks(id, node_id, name, size_bytes) VALUES (?1,?2,?3,?4)",
    [REC_RUN_BEGIN] = "UPDATE run SET scenario_name=?1, scenario_path=?2, scenario_text=?3,"
                      " faultline_version=?4, host=?5, accel=?6, seed=?7, started_wall_ns=?8"
                      " WHERE id = 1",
    [REC_RUN_END] = "UPDATE run SET verdict=?1, verdict_detail=?2, ended_ns=?3 WHERE id = 1",
    [REC_LINK_PARAMS] = "INSERT INTO link_params(link_id, t_ns, params) VALUES (?1,?2,?3)",
    [REC_EVENT] = "INSERT INTO events(id, t_ns, kind, node_id, detail) VALUES (?1,?2,?3,?4,?5)",
    [REC_EVENT_END] = "UPDATE events SET end_ns = ?2 WHERE id = ?1",
    [REC_CHECK] = "INSERT INTO checks(name, node_id, command, exit_status, stdout, stderr,"
                  " passed, start_ns, end_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [REC_FRAME] = "INSERT INTO frames(sent_ns, delivered_ns, link_id, src_nic_id, dst_nic_id,"
                  " size, hash, fate, reason, copy, reordered, corrupt_offset, corrupt_mask,"
                  " pcap_index) SELECT * FROM trace_frame_batch",
    [REC_IO] = "INSERT INTO ios(id, disk_id, op, offset, length, submit_ns, complete_ns, result,"
               " fault, fua) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [REC_CRASH] = "INSERT INTO crashes(id, disk_id, t_ns, policy) VALUES (?1,?2,?3,?4)",
    [REC_CRASH_WRITE] = "INSERT INTO crash_writes(crash_id, io_id, outcome, kept_bytes)"
                        " VALUES (?1,?2,?3,?4)",
    [REC_EPOCH] = NULL,
};

/* Time columns shifted when the epoch changes. */
static const char epoch_shift_sql[] =
    "UPDATE frames SET sent_ns = sent_ns + ?1, delivered_ns = delivered_ns + ?1;"
    "UPDATE ios SET submit_ns = submit_ns + ?1, complete_ns = complete_ns + ?1;"
    "UPDATE events SET t_ns = t_ns + ?1, end_ns = end_ns + ?1;"
    "UPDATE link_params SET t_ns = t_ns + ?1;"
    "UPDATE checks SET start_ns = start_ns + ?1, end_ns = end_ns + ?1;"
    "UPDATE crashes SET t_ns = t_ns + ?1;"
    "UPDATE run SET ended_ns = ended_ns + ?1;";

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
    const char *sql = epoch_shift_sql;
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

/*
 * Frame records go in by the run: `INSERT INTO frames(...) SELECT * FROM
 * trace_frame_batch`, where trace_frame_batch is an eponymous virtual
 * table (nothing of it is stored in the file) showing the consecutive
 * frame records db->vt_batch[vt_begin, vt_end) with their column values.
 * One statement step per run instead of a bind/step/reset per row: at
 * netback's rates that halves the writer thread's CPU per record.
 */
enum {
    FCOL_SENT,
    FCOL_DELIVERED,
    FCOL_LINK,
    FCOL_SRC_NIC,
    FCOL_DST_NIC,
    FCOL_SIZE,
    FCOL_HASH,
    FCOL_FATE,
    FCOL_REASON,
    FCOL_COPY,
    FCOL_REORDERED,
    FCOL_CORRUPT_OFFSET,
    FCOL_CORRUPT_MASK,
    FCOL_PCAP_INDEX,
};

struct frame_vtab {
    sqlite3_vtab base;
    struct trace_db *db;
};

struct frame_cursor {
    sqlite3_vtab_cursor base;
    struct trace_db *db;
    size_t k;
};

static int fvt_connect(sqlite3 *conn, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **err)
{
    int rc = sqlite3_declare_vtab(conn, "CREATE TABLE x(sent_ns, delivered_ns, link_id,"
                                        " src_nic_id, dst_nic_id, size, hash, fate, reason, copy,"
                                        " reordered, corrupt_offset, corrupt_mask, pcap_index)");
    if (rc != SQLITE_OK) {
        return rc;
    }
    struct frame_vtab *v = sqlite3_malloc(sizeof(*v));
    if (!v) {
        return SQLITE_NOMEM;
    }
    memset(v, 0, sizeof(*v));
    v->db = aux;
    *out = &v->base;
    return SQLITE_OK;
}

static int fvt_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int fvt_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    info->estimatedCost = 1;
    return SQLITE_OK;
}

static int fvt_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    struct frame_cursor *c = sqlite3_malloc(sizeof(*c));
    if (!c) {
        return SQLITE_NOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->db = ((struct frame_vtab *)vt)->db;
    *out = &c->base;
    return SQLITE_OK;
}

static int fvt_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int fvt_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                      sqlite3_value **argv)
{
    struct frame_cursor *c = (struct frame_cursor *)cur;
    c->k = c->db->vt_batch ? c->db->vt_begin : 0;
    return SQLITE_OK;
}

static int fvt_next(sqlite3_vtab_cursor *cur)
{
    ((struct frame_cursor *)cur)->k++;
    return SQLITE_OK;
}

static int fvt_eof(sqlite3_vtab_cursor *cur)
{
    const struct frame_cursor *c = (const struct frame_cursor *)cur;
    return !c->db->vt_batch || c->k >= c->db->vt_end;
}

static void result_time(sqlite3_context *ctx, int64_t mono, int64_t epoch)
{
    if (mono == TRACE_NO_TIME) {
        sqlite3_result_null(ctx);
    } else {
        sqlite3_result_int64(ctx, mono - epoch);
    }
}

static void result_id(sqlite3_context *ctx, int64_t id)
{
    if (id > 0) {
        sqlite3_result_int64(ctx, id);
    } else {
        sqlite3_result_null(ctx);
    }
}

static int fvt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    const struct frame_cursor *c = (const struct frame_cursor *)cur;
    const struct trace_frame *f = &c->db->vt_batch->recs[c->k].u.frame;
    int64_t ep = c->db->writer_epoch;
    switch (col) {
    case FCOL_SENT:
        result_time(ctx, f->sent_ns, ep);
        break;
    case FCOL_DELIVERED:
        result_time(ctx, f->delivered_ns, ep);
        break;
    case FCOL_LINK:
        sqlite3_result_int64(ctx, f->link_id);
        break;
    case FCOL_SRC_NIC:
        result_id(ctx, f->src_nic_id);
        break;
    case FCOL_DST_NIC:
        result_id(ctx, f->dst_nic_id);
        break;
    case FCOL_SIZE:
        sqlite3_result_int64(ctx, f->size);
        break;
    case FCOL_HASH:
        sqlite3_result_int64(ctx, f->hash);
        break;
    case FCOL_FATE:
        sqlite3_result_text(ctx, trace_fate_name(f->fate), -1, SQLITE_STATIC);
        break;
    case FCOL_REASON:
        if (f->fate == TRACE_FATE_DROPPED) {
            sqlite3_result_text(ctx, trace_drop_reason_name(f->reason), -1, SQLITE_STATIC);
        } else {
            sqlite3_result_null(ctx);
        }
        break;
    case FCOL_COPY:
        sqlite3_result_int64(ctx, f->copy);
        break;
    case FCOL_REORDERED:
        sqlite3_result_int64(ctx, f->reordered ? 1 : 0);
        break;
    case FCOL_CORRUPT_OFFSET:
        if (f->corrupt_mask) {
            sqlite3_result_int64(ctx, f->corrupt_offset);
        } else {
            sqlite3_result_null(ctx);
        }
        break;
    case FCOL_CORRUPT_MASK:
        if (f->corrupt_mask) {
            sqlite3_result_int64(ctx, f->corrupt_mask);
        } else {
            sqlite3_result_null(ctx);
        }
        break;
    case FCOL_PCAP_INDEX:
        if (f->pcap_index >= 0) {
            sqlite3_result_int64(ctx, f->pcap_index);
        } else {
            sqlite3_result_null(ctx);
        }
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int fvt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((const struct frame_cursor *)cur)->k;
    return SQLITE_OK;
}

static const sqlite3_module frame_batch_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous-only: never created in a schema */
    .xConnect = fvt_connect,
    .xBestIndex = fvt_best_index,
    .xDisconnect = fvt_disconnect,
    .xDestroy = fvt_disconnect,
    .xOpen = fvt_open,
    .xClose = fvt_close,
    .xFilter = fvt_filter,
    .xNext = fvt_next,
    .xEof = fvt_eof,
    .xColumn = fvt_column,
    .xRowid = fvt_rowid,
};

/* Inserts the frame records b->recs[begin, end). */
static int write_frames(struct trace_db *db, const struct batch *b, size_t begin, size_t end)
{
    sqlite3_stmt *st = db->st[REC_FRAME];
    db->vt_batch = b;
    db->vt_begin = begin;
    db->vt_end = end;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    db->vt_batch = NULL;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
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
        bind_str(st, 2, batch_str(b, s[0]));
        break;
    case REC_NIC:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_id(st, 2, i[1]);
        bind_id(st, 3, i[2]);
        bind_str(st, 4, batch_str(b, s[0]));
        bind_str(st, 5, batch_str(b, s[1]));
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
        bind_str(st, 3, batch_str(b, s[0]));
        sqlite3_bind_int64(st, 4, i[2]);
        break;
    case REC_RUN_BEGIN: {
        for (int k = 0; k < 6; k++) {
            bind_str(st, k + 1, batch_str(b, s[k]));
        }
        char seed[32];
        snprintf(seed, sizeof(seed), "%" PRIu64, (uint64_t)i[0]);
        sqlite3_bind_text(st, 7, seed, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 8, i[1]);
        break;
    }
    case REC_RUN_END:
        bind_str(st, 1, batch_str(b, s[0]));
        bind_str(st, 2, batch_str(b, s[1]));
        bind_time(st, 3, i[0], ep);
        break;
    case REC_LINK_PARAMS:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        bind_str(st, 3, batch_str(b, s[0]));
        break;
    case REC_EVENT:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        bind_str(st, 3, batch_str(b, s[0]));
        bind_id(st, 4, i[2]);
        bind_str(st, 5, batch_str(b, s[1]));
        break;
    case REC_EVENT_END:
        sqlite3_bind_int64(st, 1, i[0]);
        bind_time(st, 2, i[1], ep);
        break;
    case REC_CHECK:
        bind_str(st, 1, batch_str(b, s[0]));
        bind_id(st, 2, i[0]);
        bind_str(st, 3, batch_str(b, s[1]));
        sqlite3_bind_int64(st, 4, i[1]);
        bind_str(st, 5, batch_str(b, s[2]));
        bind_str(st, 6, batch_str(b, s[3]));
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
        bind_str(st, 4, batch_str(b, s[0]));
        break;
    case REC_CRASH_WRITE:
        sqlite3_bind_int64(st, 1, i[0]);
        sqlite3_bind_int64(st, 2, i[1]);
        bind_str(st, 3, trace_crash_outcome_name((enum trace_crash_outcome)i[2]));
        sqlite3_bind_int64(st, 4, i[3]);
        break;
    case REC_EPOCH:
    case REC_FRAME: /* write_frames() */
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
            rc = write_frames(db, b, k, end);
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
            if (rc != SQLITE_OK) {
                fl_log(FL_LOG_ERROR, "trace", "%s: writing a batch of %zu records: %s", db->path,
                       b->len, sqlite3_errmsg(db->conn));
            }
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

static int sqlite_to_errno(int rc)
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

void trace_writer_thread_setup(void)
{
    /* Writers are deferred work behind deep queues: they should run when
     * a CPU is free, not preempt the event loop (or a guest's vCPU) each
     * time a batch is ready.  At nice 0 they did, on two cores: the
     * netback benchmark with tracing ran at 0.38-0.40x of the raw relay
     * for 1500-byte frames, 0.70-0.77x at +10 (0.69-0.84 / 0.89-0.94 at
     * 64 bytes).  A writer starved for long enough only makes its
     * producers wait (counted), nothing is lost. */
    pid_t tid = gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0) {
        setpriority(PRIO_PROCESS, (id_t)tid, FL_MIN(nice + TRACE_WRITER_NICE, 19));
    }
}

static void *writer_main(void *arg)
{
    struct trace_db *db = arg;
    trace_writer_thread_setup();
    pthread_mutex_lock(&db->mu);
    for (;;) {
        if (!db->queue_head && db->staging && db->staging->len &&
            mono_now() - db->staging->first_ns >= db->batch_interval_ns) {
            staging_push(db);
        }
        if (!db->queue_head) {
            if (db->stopping) {
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

        int rc = db->failed ? SQLITE_OK : write_batch(db, b);

        pthread_mutex_lock(&db->mu);
        db->queued--;
        if (rc != SQLITE_OK && !db->failed) {
            db->failed = sqlite_to_errno(rc);
        }
        if (rc == SQLITE_OK && !db->failed) {
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

/* ------------------------------------------------------------------ */
/* Open / close                                                        */
/* ------------------------------------------------------------------ */

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

static int64_t query_int(sqlite3 *conn, const char *sql, int64_t dflt)
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
            intern_add(t, -1, -1, -1, NULL);
        }
        intern_add(t, v[0], v[1], v[2], name);
    }
    sqlite3_finalize(st);
}

static bool check_version(sqlite3 *conn, const char *path, struct fl_error **errp)
{
    int64_t v = query_int(conn, "PRAGMA user_version", 0);
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
    db->next_event = query_int(db->conn, "SELECT max(id) FROM events", 0);
    db->next_io = query_int(db->conn, "SELECT max(id) FROM ios", 0);
    db->next_crash = query_int(db->conn, "SELECT max(id) FROM crashes", 0);
    db->run_begun = query_int(db->conn, "SELECT scenario_name IS NOT NULL FROM run", 0) != 0;
    int64_t stored_epoch = query_int(db->conn, "SELECT epoch_mono_ns FROM run", TRACE_NO_TIME);
    db->epoch = stored_epoch != TRACE_NO_TIME ? stored_epoch : mono_now();
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

    if (sqlite3_create_module(db->conn, "trace_frame_batch", &frame_batch_module, db) !=
        SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: registering trace_frame_batch: %s", path,
                      sqlite3_errmsg(db->conn));
        trace_db_close(db);
        return NULL;
    }
    for (size_t k = 0; k < FL_ARRAY_LEN(insert_sql); k++) {
        if (insert_sql[k] &&
            sqlite3_prepare_v3(db->conn, insert_sql[k], -1, SQLITE_PREPARE_PERSISTENT, &db->st[k],
                               NULL) != SQLITE_OK) {
            fl_error_setf(errp, EIO, "%s: preparing '%s': %s", path, insert_sql[k],
                          sqlite3_errmsg(db->conn));
            trace_db_close(db);
            return NULL;
        }
    }
    if (pthread_create(&db->thread, NULL, writer_main, db) != 0) {
        fl_error_setf(errp, EAGAIN, "%s: cannot start the trace writer thread", path);
        trace_db_close(db);
        return NULL;
    }
    db->thread_started = true;
    pthread_setname_np(db->thread, "fl-trace-db");
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
    staging_push(db);
    uint64_t target = db->enqueued_seq;
    while (db->committed_seq < target && db->thread_started) {
        pthread_cond_wait(&db->progress, &db->mu);
    }
    int failed = db->failed;
    pthread_mutex_unlock(&db->mu);
    return failed ? -failed : 0;
}

void trace_db_close(struct trace_db *db)
{
    if (!db) {
        return;
    }
    if (db->thread_started) {
        int rc = trace_db_flush(db);
        pthread_mutex_lock(&db->mu);
        db->stopping = true;
        pthread_cond_signal(&db->wake_writer);
        pthread_mutex_unlock(&db->mu);
        pthread_join(db->thread, NULL);
        if (rc != 0) {
            fl_log(FL_LOG_ERROR, "trace", "%s: closing with unwritten records: %s", db->path,
                   strerror(-rc));
        }
        char *sql = fl_xasprintf("DELETE FROM meta WHERE key = 'writer_pid';"
                                 " INSERT OR REPLACE INTO meta VALUES ('stall_ns', '%" PRId64
                                 "'), ('records', '%" PRIu64 "');",
                                 db->stats.stall_ns, db->stats.committed);
        sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
        free(sql);
        fl_log(FL_LOG_INFO, "trace",
               "%s: %" PRIu64 " records in %" PRIu64 " transactions; writers waited %.1f ms"
               " for the database",
               db->path, db->stats.committed, db->stats.batches, (double)db->stats.stall_ns / 1e6);
        char *msg = NULL;
        if (sqlite3_exec(db->conn, trace_index_sql, NULL, NULL, &msg) != SQLITE_OK) {
            fl_log(FL_LOG_ERROR, "trace", "%s: creating indexes: %s", db->path, msg);
            sqlite3_free(msg);
        }
        sqlite3_exec(db->conn, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    for (size_t k = 0; k < FL_ARRAY_LEN(db->st); k++) {
        sqlite3_finalize(db->st[k]);
    }
    if (db->conn) {
        sqlite3_close_v2(db->conn);
    }
    batch_free(db->staging);
    while (db->queue_head) {
        struct batch *b = db->queue_head;
        db->queue_head = b->next;
        batch_free(b);
    }
    while (db->free_list) {
        struct batch *b = db->free_list;
        db->free_list = b->next;
        batch_free(b);
    }
    intern_free(&db->nodes);
    intern_free(&db->networks);
    intern_free(&db->nics);
    intern_free(&db->links);
    intern_free(&db->disks);
    pthread_cond_destroy(&db->wake_writer);
    pthread_cond_destroy(&db->progress);
    pthread_mutex_destroy(&db->mu);
    free(db->path);
    free(db);
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

struct trace_db *trace_db_open_reader(const char *run, char **db_path_out, char **run_dir_out,
                                      struct fl_error **errp)
{
    if (!run || !*run) {
        fl_error_setf(errp, EINVAL, "no run given (a run directory or a run.db file)");
        return NULL;
    }
    char *path, *dir;
    size_t n = strlen(run);
    if (n >= 3 && !strcmp(run + n - 3, ".db")) {
        path = fl_xstrdup(run);
        const char *slash = strrchr(run, '/');
        dir = slash ? fl_xstrndup(run, (size_t)(slash - run)) : fl_xstrdup(".");
        if (!*dir) {
            free(dir);
            dir = fl_xstrdup("/");
        }
    } else {
        dir = fl_xstrdup(run);
        path = fl_xasprintf("%s/run.db", run);
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        fl_error_setf_errno(errp, e, "'%s': not a run directory containing run.db, nor a run.db",
                            run);
        free(path);
        free(dir);
        return NULL;
    }
    struct trace_db *db = fl_xcalloc(1, sizeof(*db));
    db->path = path;
    db->readonly = true;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->wake_writer, NULL);
    pthread_cond_init(&db->progress, NULL);
    /* Create missing indexes when we may (a run killed before close has
     * none), and keep that read-write connection so closing it also
     * removes the WAL files; a read-only file is queried as it is.  The
     * reader never writes anything else. */
    int rc = SQLITE_CANTOPEN;
    if (access(path, W_OK) == 0) {
        rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db->conn, 2000);
            /* never while the run is being written: building an index
             * holds the write lock and would stall the emulator */
            int64_t pid = query_int(db->conn, "SELECT value FROM meta WHERE key = 'writer_pid'", 0);
            bool live = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
            if (!live && query_int(db->conn, "PRAGMA user_version", 0) == TRACE_SCHEMA_VERSION) {
                sqlite3_exec(db->conn, trace_index_sql, NULL, NULL, NULL);
            }
        } else {
            sqlite3_close_v2(db->conn);
            db->conn = NULL;
        }
    }
    if (rc != SQLITE_OK) {
        rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READONLY, NULL);
    }
    if (rc != SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: cannot open: %s", path,
                      db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    int64_t v = query_int(db->conn, "PRAGMA user_version", -1);
    if (v < 0) {
        fl_error_setf(errp, EPROTO, "%s: not an SQLite database: %s", path,
                      sqlite3_errmsg(db->conn));
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    if (v != TRACE_SCHEMA_VERSION) {
        fl_error_setf(errp, EPROTO,
                      "%s: run database schema version %" PRId64
                      " is not supported (this faultline reads version %d)",
                      path, v, TRACE_SCHEMA_VERSION);
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    if (db_path_out) {
        *db_path_out = fl_xstrdup(path);
    }
    if (run_dir_out) {
        *run_dir_out = dir;
    } else {
        free(dir);
    }
    return db;
}

struct trace_db *trace_db_open_readonly(const char *run, struct fl_error **errp)
{
    return trace_db_open_reader(run, NULL, NULL, errp);
}

/* ------------------------------------------------------------------ */
/* Writers                                                             */
/* ------------------------------------------------------------------ */

#define LOCKED_REC(db, type, r)                                                                    \
    struct rec *r = rec_new((db), (type));                                                         \
    if (!r) {                                                                                      \
        pthread_mutex_unlock(&(db)->mu);                                                           \
        return (db)->readonly ? -EBADF : -EIO;                                                     \
    }

int trace_db_set_epoch(struct trace_db *db, int64_t mono_ns)
{
    if (!db || mono_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    LOCKED_REC(db, REC_EPOCH, r);
    r->u.g.i[0] = mono_ns;
    db->epoch = mono_ns;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_db_epoch(const struct trace_db *db)
{
    return db->epoch;
}

static int64_t intern(struct trace_db *db, struct intern_table *t, enum rec_type type, int64_t a,
                      int64_t b, int64_t c, const char *name, const char *extra, uint64_t size)
{
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    int64_t id;
    if (intern_find(t, a, b, c, name, &id)) {
        pthread_mutex_unlock(&db->mu);
        return id;
    }
    LOCKED_REC(db, type, r);
    id = intern_add(t, a, b, c, name);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.i[0] = id;
    switch (type) {
    case REC_NODE:
    case REC_NETWORK:
        r->u.g.s[0] = rec_str(db, name);
        break;
    case REC_NIC:
        r->u.g.i[1] = a;
        r->u.g.i[2] = (int64_t)size; /* network id */
        r->u.g.s[0] = rec_str(db, name);
        r->u.g.s[1] = rec_str(db, extra);
        break;
    case REC_LINK:
        r->u.g.i[1] = a;
        r->u.g.i[2] = b;
        r->u.g.i[3] = c;
        break;
    case REC_DISK:
        r->u.g.i[1] = a;
        r->u.g.i[2] = (int64_t)size;
        r->u.g.s[0] = rec_str(db, name);
        break;
    default:
        break;
    }
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

static bool id_ok(const struct intern_table *t, int64_t id)
{
    return id > 0 && (size_t)id <= t->len;
}

int64_t trace_node_id(struct trace_db *db, const char *name)
{
    if (!db || !valid_name(name)) {
        return -EINVAL;
    }
    return intern(db, &db->nodes, REC_NODE, 0, 0, 0, name, NULL, 0);
}

int64_t trace_network_id(struct trace_db *db, const char *name)
{
    if (!db || !fl_name_valid(name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    return intern(db, &db->networks, REC_NETWORK, 0, 0, 0, name, NULL, 0);
}

int64_t trace_nic_id(struct trace_db *db, int64_t node_id, int64_t network_id, const char *nic_name,
                     const char *mac)
{
    if (!db || !fl_name_valid(nic_name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, node_id) && (network_id == 0 || id_ok(&db->networks, network_id));
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->nics, REC_NIC, node_id, 0, 0, nic_name, mac, (uint64_t)network_id);
}

int64_t trace_link_id(struct trace_db *db, int64_t network_id, int64_t src_node_id,
                      int64_t dst_node_id)
{
    if (!db) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, src_node_id) && id_ok(&db->nodes, dst_node_id) &&
              (network_id == 0 || id_ok(&db->networks, network_id));
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->links, REC_LINK, network_id, src_node_id, dst_node_id, NULL, NULL, 0);
}

int64_t trace_disk_id(struct trace_db *db, int64_t node_id, const char *disk_name,
                      uint64_t size_bytes)
{
    if (!db || !fl_name_valid(disk_name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, node_id);
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->disks, REC_DISK, node_id, 0, 0, disk_name, NULL, size_bytes);
}

int trace_run_begin(struct trace_db *db, const struct trace_run_info *info)
{
    if (!db || !info || !valid_name(info->scenario_name)) {
        return -EINVAL;
    }
    char host[256] = "";
    if (!info->host) {
        gethostname(host, sizeof(host) - 1);
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (db->run_begun) {
        pthread_mutex_unlock(&db->mu);
        return -EEXIST;
    }
    LOCKED_REC(db, REC_RUN_BEGIN, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    db->run_begun = true;
    r->u.g.s[0] = rec_str(db, info->scenario_name);
    r->u.g.s[1] = rec_str(db, info->scenario_path);
    r->u.g.s[2] = rec_str(db, info->scenario_text);
    r->u.g.s[3] = rec_str(db, info->faultline_version ? info->faultline_version : FL_VERSION);
    r->u.g.s[4] = rec_str(db, info->host ? info->host : host);
    r->u.g.s[5] = rec_str(db, info->accel);
    r->u.g.i[0] = (int64_t)info->seed;
    r->u.g.i[1] = info->started_wall_ns ? info->started_wall_ns : fl_clock_real_ns();
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_run_end(struct trace_db *db, const char *verdict, const char *detail, int64_t end_mono_ns)
{
    static const char *const verdicts[] = {"pass", "fail", "error", "interrupted"};
    bool ok = false;
    for (size_t k = 0; verdict && k < FL_ARRAY_LEN(verdicts); k++) {
        ok = ok || !strcmp(verdict, verdicts[k]);
    }
    if (!db || !ok) {
        return -EINVAL;
    }
    if (end_mono_ns == TRACE_NO_TIME) {
        end_mono_ns = mono_now();
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    LOCKED_REC(db, REC_RUN_END, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.s[0] = rec_str(db, verdict);
    r->u.g.s[1] = rec_str(db, detail);
    r->u.g.i[0] = end_mono_ns;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_link_params(struct trace_db *db, int64_t link_id, int64_t t_ns, const char *params)
{
    if (!db || !params) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (!id_ok(&db->links, link_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_LINK_PARAMS, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.i[0] = link_id;
    r->u.g.i[1] = t_ns;
    r->u.g.s[0] = rec_str(db, params);
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_event(struct trace_db *db, int64_t t_ns, const char *kind, int64_t node_id,
                    const char *detail)
{
    if (!db || !valid_name(kind) || t_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (node_id != 0 && !id_ok(&db->nodes, node_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_EVENT, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    int64_t id = ++db->next_event;
    r->u.g.i[0] = id;
    r->u.g.i[1] = t_ns;
    r->u.g.i[2] = node_id;
    r->u.g.s[0] = rec_str(db, kind);
    r->u.g.s[1] = rec_str(db, detail);
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int trace_event_end(struct trace_db *db, int64_t event_id, int64_t end_ns)
{
    if (!db || end_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (event_id <= 0 || event_id > db->next_event) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_EVENT_END, r);
    r->u.g.i[0] = event_id;
    r->u.g.i[1] = end_ns;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_check(struct trace_db *db, const struct trace_check *c)
{
    if (!db || !c || !valid_name(c->name)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (c->node_id != 0 && !id_ok(&db->nodes, c->node_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CHECK, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.s[0] = rec_str(db, c->name);
    r->u.g.s[1] = rec_str(db, c->command);
    r->u.g.s[2] = rec_str(db, c->out);
    r->u.g.s[3] = rec_str(db, c->err);
    r->u.g.i[0] = c->node_id;
    r->u.g.i[1] = c->exit_status;
    r->u.g.i[2] = c->passed ? 1 : 0;
    r->u.g.i[3] = c->start_ns;
    r->u.g.i[4] = c->end_ns;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_frame(struct trace_db *db, const struct trace_frame *f)
{
    if (!db || !f || f->fate >= TRACE_FATE_COUNT || f->reason >= TRACE_DROP_COUNT ||
        f->link_id <= 0 || f->sent_ns == TRACE_NO_TIME ||
        (f->fate == TRACE_FATE_DELIVERED &&
         (f->delivered_ns == TRACE_NO_TIME || f->reason != TRACE_DROP_NONE)) ||
        (f->fate == TRACE_FATE_DROPPED && f->reason == TRACE_DROP_NONE)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if ((size_t)f->link_id > db->links.len) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_FRAME, r);
    r->u.frame = *f;
    if (f->fate == TRACE_FATE_DROPPED) {
        r->u.frame.delivered_ns = TRACE_NO_TIME;
    }
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_io(struct trace_db *db, const struct trace_io *io)
{
    if (!db || !io || io->op >= TRACE_IO_OP_COUNT || io->fault >= TRACE_IO_FAULT_COUNT ||
        io->disk_id <= 0 || io->submit_ns == TRACE_NO_TIME || io->result < 0 ||
        io->offset > INT64_MAX || io->length > INT64_MAX) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if ((size_t)io->disk_id > db->disks.len) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_IO, r);
    int64_t id = ++db->next_io;
    r->u.io.id = id;
    r->u.io.io = *io;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int64_t trace_crash(struct trace_db *db, int64_t disk_id, int64_t t_ns, const char *policy)
{
    if (!db || t_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (!id_ok(&db->disks, disk_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CRASH, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    int64_t id = ++db->next_crash;
    r->u.g.i[0] = id;
    r->u.g.i[1] = disk_id;
    r->u.g.i[2] = t_ns;
    r->u.g.s[0] = rec_str(db, policy);
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int trace_crash_write(struct trace_db *db, int64_t crash_id, int64_t io_id,
                      enum trace_crash_outcome outcome, uint64_t kept_bytes)
{
    if (!db || (unsigned)outcome >= TRACE_CRASH_OUTCOME_COUNT || kept_bytes > INT64_MAX) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (crash_id <= 0 || crash_id > db->next_crash || io_id <= 0 || io_id > db->next_io) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CRASH_WRITE, r);
    r->u.g.i[0] = crash_id;
    r->u.g.i[1] = io_id;
    r->u.g.i[2] = outcome;
    r->u.g.i[3] = (int64_t)kept_bytes;
    rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}
