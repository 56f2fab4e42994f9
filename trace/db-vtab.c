/*
 * The virtual table frame records go in through.
 *
 * Frame records go in by the run: `INSERT INTO frames(...) SELECT * FROM
 * trace_frame_batch`, where trace_frame_batch is an eponymous virtual
 * table (nothing of it is stored in the file) showing the consecutive
 * frame records db->vt_batch[vt_begin, vt_end) with their column values.
 * One statement step per run instead of a bind/step/reset per row: at
 * netback's rates that halves the writer thread's CPU per record.
 */
#include <string.h>

#include "trace/db-internal.h"

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

const sqlite3_module trace_frame_batch_module = {
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
int trace_db_write_frames(struct trace_db *db, const struct batch *b, size_t begin, size_t end)
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
