/* `faultline trace`: the questions about a run, answered without SQL.
 * Each query kind builds one SELECT with bound parameters and prints rows
 * as an aligned table or as JSON lines. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trace/internal.h"

/* Checks that `name` is a row of `table` ("nodes", "disks"); the error
 * lists the valid names. */
static bool check_name(sqlite3 *conn, const char *table, const char *what, const char *name,
                       struct fl_error **errp)
{
    char *sql = fl_xasprintf("SELECT DISTINCT name FROM %s ORDER BY name", table);
    sqlite3_stmt *st;
    bool found = false;
    struct fl_buf names = {0};
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *n = (const char *)sqlite3_column_text(st, 0);
            found = found || !strcmp(n, name);
            fl_buf_printf(&names, "%s'%s'", names.size ? ", " : "", n);
        }
        sqlite3_finalize(st);
    }
    free(sql);
    if (!found) {
        fl_error_setf(errp, ENOENT, "%s '%s' is not in this run (%s: %s)", what, name, table,
                      names.size ? names.data : "none");
    }
    fl_buf_free(&names);
    return found;
}

bool trace_query_validate(sqlite3 *conn, const struct trace_query *q, struct fl_error **errp)
{
    const char *nodes[] = {q->from_node, q->to_node, q->node};
    for (size_t k = 0; k < FL_ARRAY_LEN(nodes); k++) {
        if (nodes[k] && !check_name(conn, "nodes", "node", nodes[k], errp)) {
            return false;
        }
    }
    if (q->disk && !check_name(conn, "disks", "disk", q->disk, errp)) {
        return false;
    }
    return true;
}

/* SQL for the frames a query selects.  Columns (FRAME_COL_*):
 * id, sent, delivered, src node, dst node, network, src nic, dst nic,
 * size, hash, fate, reason, copy, reordered, corrupt offset, corrupt mask,
 * pcap index, src nic id. */
static const char frames_select[] =
    "SELECT f.id, f.sent_ns, f.delivered_ns, sn.name, dn.name, nw.name, sc.name, dc.name,"
    " f.size, f.hash, f.fate, f.reason, f.copy, f.reordered, f.corrupt_offset,"
    " f.corrupt_mask, f.pcap_index, f.src_nic_id"
    " FROM frames f JOIN links l ON l.id = f.link_id"
    " JOIN nodes sn ON sn.id = l.src_node_id JOIN nodes dn ON dn.id = l.dst_node_id"
    " LEFT JOIN networks nw ON nw.id = l.network_id"
    " LEFT JOIN nics sc ON sc.id = f.src_nic_id LEFT JOIN nics dc ON dc.id = f.dst_nic_id"
    " WHERE 1";

sqlite3_stmt *trace_query_frames_stmt(sqlite3 *conn, const struct trace_query *q,
                                      struct fl_error **errp)
{
    struct fl_buf sql = {0};
    fl_buf_puts(&sql, frames_select);
    if (q->from_node) {
        fl_buf_puts(&sql, " AND sn.name = :from");
    }
    if (q->to_node) {
        fl_buf_puts(&sql, " AND dn.name = :to");
    }
    if (q->node) {
        fl_buf_puts(&sql, " AND (sn.name = :node OR dn.name = :node)");
    }
    if (q->fate_flags & TRACE_Q_DELIVERED) {
        fl_buf_puts(&sql, " AND f.fate = 'delivered'");
    }
    if (q->fate_flags & TRACE_Q_DROPPED) {
        fl_buf_puts(&sql, " AND f.fate = 'dropped'");
    }
    if (q->fate_flags & TRACE_Q_DUPLICATED) {
        fl_buf_puts(&sql, " AND f.copy > 0");
    }
    if (q->fate_flags & TRACE_Q_CORRUPTED) {
        fl_buf_puts(&sql, " AND f.corrupt_mask IS NOT NULL");
    }
    if (q->fate_flags & TRACE_Q_REORDERED) {
        fl_buf_puts(&sql, " AND f.reordered = 1");
    }
    if (q->reason > 0) {
        fl_buf_puts(&sql, " AND f.reason = :reason");
    }
    if (q->delayed_beyond_ns > 0) {
        fl_buf_puts(&sql, " AND f.delivered_ns - f.sent_ns > :delay");
    }
    if (q->has_since) {
        fl_buf_puts(&sql, " AND f.sent_ns >= :since");
    }
    if (q->has_until) {
        fl_buf_puts(&sql, " AND f.sent_ns < :until");
    }
    fl_buf_puts(&sql, " ORDER BY f.sent_ns, f.id");
    if (q->limit) {
        fl_buf_printf(&sql, " LIMIT %zu", q->limit);
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(conn, sql.data, -1, &st, NULL) != SQLITE_OK) {
        fl_error_setf(errp, EIO, "frames query: %s", sqlite3_errmsg(conn));
        fl_buf_free(&sql);
        return NULL;
    }
    fl_buf_free(&sql);
#define BIND_TEXT(name, v)                                                                         \
    if (v) {                                                                                       \
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1, SQLITE_TRANSIENT);    \
    }
    BIND_TEXT(":from", q->from_node);
    BIND_TEXT(":to", q->to_node);
    BIND_TEXT(":node", q->node);
    if (q->reason > 0) {
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":reason"),
                          trace_drop_reason_name((enum trace_drop_reason)q->reason), -1,
                          SQLITE_STATIC);
    }
    if (q->delayed_beyond_ns > 0) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":delay"), q->delayed_beyond_ns);
    }
    if (q->has_since) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), q->since_ns);
    }
    if (q->has_until) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), q->until_ns);
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* Output: a table (columns sized to their content) or JSON lines      */
/* ------------------------------------------------------------------ */

#define MAX_COLS 12

/* Column widths come from the first TABLE_SIZING_ROWS rows; later rows
 * are printed as they come (a run can have millions of frames). */
#define TABLE_SIZING_ROWS 1000

struct out_table {
    const char *heads[MAX_COLS];
    size_t ncols;
    FILE *out;
    char **cells; /* buffered rows × ncols */
    size_t rows, alloc;
    bool sized;
    size_t w[MAX_COLS];
};

/* One row, columns padded to their widths; no trailing blanks when the
 * last cells are empty. */
static void table_line(struct out_table *t, char *const *cells)
{
    size_t n = t->ncols;
    while (n > 1 && !cells[n - 1][0]) {
        n--;
    }
    for (size_t c = 0; c < n; c++) {
        fprintf(t->out, "%-*s%s", c + 1 < n ? (int)t->w[c] : 0, cells[c], c + 1 < n ? "  " : "\n");
    }
}

static void table_size(struct out_table *t)
{
    for (size_t c = 0; c < t->ncols; c++) {
        t->w[c] = strlen(t->heads[c]);
        for (size_t r = 0; r < t->rows; r++) {
            t->w[c] = FL_MAX(t->w[c], strlen(t->cells[r * t->ncols + c]));
        }
    }
    table_line(t, (char *const *)t->heads);
    for (size_t r = 0; r < t->rows; r++) {
        table_line(t, t->cells + r * t->ncols);
    }
    for (size_t k = 0; k < t->rows * t->ncols; k++) {
        free(t->cells[k]);
    }
    t->rows = 0;
    t->sized = true;
}

/* Takes ownership of the ncols strings of cells. */
static void table_row(struct out_table *t, char **cells)
{
    if (t->sized) {
        table_line(t, cells);
        for (size_t c = 0; c < t->ncols; c++) {
            free(cells[c]);
        }
        return;
    }
    t->cells = fl_xgrow(t->cells, &t->alloc, (t->rows + 1) * t->ncols, sizeof(char *));
    memcpy(t->cells + t->rows * t->ncols, cells, t->ncols * sizeof(char *));
    if (++t->rows == TABLE_SIZING_ROWS) {
        table_size(t);
    }
}

static void table_print(struct out_table *t, FILE *out)
{
    t->out = out;
    if (!t->sized) {
        table_size(t);
    }
    free(t->cells);
}

/* The end of every query printer: finalize the statement, print the
 * table (NULL: JSON lines were printed as they came), report a step
 * error. */
static bool query_done(sqlite3 *conn, sqlite3_stmt *st, int rc, struct out_table *t, FILE *out,
                       const char *what, struct fl_error **errp)
{
    /* The message must be read before finalize resets it. */
    if (rc != SQLITE_DONE) {
        fl_error_setf(errp, EIO, "%s query: %s", what, sqlite3_errmsg(conn));
    }
    sqlite3_finalize(st);
    if (t) {
        table_print(t, out);
    }
    return rc == SQLITE_DONE;
}

static const char *col_text(sqlite3_stmt *st, int c)
{
    const char *s = (const char *)sqlite3_column_text(st, c);
    return s ? s : "";
}

static bool col_null(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL;
}

static char *fmt_time(int64_t ns)
{
    struct fl_buf b = {0};
    trace_fmt_time(&b, ns);
    return fl_buf_steal(&b);
}

static char *fmt_dur(int64_t ns)
{
    struct fl_buf b = {0};
    trace_fmt_duration(&b, ns);
    return fl_buf_steal(&b);
}

static void json_kv_str(struct fl_buf *b, const char *k, const char *v)
{
    fl_buf_printf(b, ",\"%s\":", k);
    if (v) {
        fl_buf_json_string(b, v);
    } else {
        fl_buf_puts(b, "null");
    }
}

static void json_kv_int(struct fl_buf *b, sqlite3_stmt *st, const char *k, int c)
{
    if (col_null(st, c)) {
        fl_buf_printf(b, ",\"%s\":null", k);
    } else {
        fl_buf_printf(b, ",\"%s\":%" PRId64, k, (int64_t)sqlite3_column_int64(st, c));
    }
}

static bool print_frames(sqlite3 *conn, const struct trace_query *q, FILE *out, size_t *rows,
                         struct fl_error **errp)
{
    sqlite3_stmt *st = trace_query_frames_stmt(conn, q, errp);
    if (!st) {
        return false;
    }
    struct out_table t = {
        .out = out,
        .heads = {"TIME", "FROM", "TO", "NET", "SIZE", "FATE", "DELAY", "FLAGS", "HASH"},
        .ncols = 9};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sent = sqlite3_column_int64(st, 1);
        bool delivered = !col_null(st, 2);
        int64_t delay = delivered ? sqlite3_column_int64(st, 2) - sent : 0;
        const char *fate = col_text(st, 10);
        if (q->json) {
            struct fl_buf b = {0};
            fl_buf_printf(&b, "{\"id\":%" PRId64, (int64_t)sqlite3_column_int64(st, 0));
            fl_buf_printf(&b, ",\"sent_ns\":%" PRId64, sent);
            json_kv_int(&b, st, "delivered_ns", 2);
            if (delivered) {
                fl_buf_printf(&b, ",\"delay_ns\":%" PRId64, delay);
            } else {
                fl_buf_puts(&b, ",\"delay_ns\":null");
            }
            json_kv_str(&b, "from", col_text(st, 3));
            json_kv_str(&b, "to", col_text(st, 4));
            json_kv_str(&b, "network", col_null(st, 5) ? NULL : col_text(st, 5));
            json_kv_str(&b, "from_nic", col_null(st, 6) ? NULL : col_text(st, 6));
            json_kv_str(&b, "to_nic", col_null(st, 7) ? NULL : col_text(st, 7));
            json_kv_int(&b, st, "size", 8);
            fl_buf_printf(&b, ",\"hash\":\"%08" PRIx32 "\"", (uint32_t)sqlite3_column_int64(st, 9));
            json_kv_str(&b, "fate", fate);
            json_kv_str(&b, "reason", col_null(st, 11) ? NULL : col_text(st, 11));
            json_kv_int(&b, st, "copy", 12);
            fl_buf_printf(&b, ",\"reordered\":%s", sqlite3_column_int(st, 13) ? "true" : "false");
            json_kv_int(&b, st, "corrupt_offset", 14);
            json_kv_int(&b, st, "corrupt_mask", 15);
            fl_buf_puts(&b, "}\n");
            fputs(b.data, out);
            fl_buf_free(&b);
        } else {
            char *cells[9];
            cells[0] = fmt_time(sent);
            cells[1] = col_null(st, 6) ? fl_xstrdup(col_text(st, 3))
                                       : fl_xasprintf("%s/%s", col_text(st, 3), col_text(st, 6));
            cells[2] = col_null(st, 7) ? fl_xstrdup(col_text(st, 4))
                                       : fl_xasprintf("%s/%s", col_text(st, 4), col_text(st, 7));
            cells[3] = fl_xstrdup(col_null(st, 5) ? "-" : col_text(st, 5));
            cells[4] = fl_xasprintf("%d", sqlite3_column_int(st, 8));
            cells[5] = delivered ? fl_xstrdup(fate) : fl_xasprintf("%s:%s", fate, col_text(st, 11));
            cells[6] = delivered ? fmt_dur(delay) : fl_xstrdup("-");
            struct fl_buf flags = {0};
            if (sqlite3_column_int(st, 12) > 0) {
                fl_buf_printf(&flags, "dup%d ", sqlite3_column_int(st, 12));
            }
            if (sqlite3_column_int(st, 13)) {
                fl_buf_puts(&flags, "reordered ");
            }
            if (!col_null(st, 15)) {
                fl_buf_printf(&flags, "corrupt@%d^0x%02x ", sqlite3_column_int(st, 14),
                              sqlite3_column_int(st, 15));
            }
            if (flags.size) {
                flags.data[--flags.size] = '\0';
                cells[7] = fl_buf_steal(&flags);
            } else {
                cells[7] = fl_xstrdup("-");
            }
            cells[8] = fl_xasprintf("%08" PRIx32, (uint32_t)sqlite3_column_int64(st, 9));
            table_row(&t, cells);
        }
        (*rows)++;
    }
    return query_done(conn, st, rc, q->json ? NULL : &t, out, "frames", errp);
}

static void bind_common(sqlite3_stmt *st, const struct trace_query *q)
{
    int k;
    if ((k = sqlite3_bind_parameter_index(st, ":node")) && q->node) {
        sqlite3_bind_text(st, k, q->node, -1, SQLITE_TRANSIENT);
    }
    if ((k = sqlite3_bind_parameter_index(st, ":disk")) && q->disk) {
        sqlite3_bind_text(st, k, q->disk, -1, SQLITE_TRANSIENT);
    }
    if ((k = sqlite3_bind_parameter_index(st, ":since"))) {
        sqlite3_bind_int64(st, k, q->since_ns);
    }
    if ((k = sqlite3_bind_parameter_index(st, ":until"))) {
        sqlite3_bind_int64(st, k, q->until_ns);
    }
}

static sqlite3_stmt *prepare_filtered(sqlite3 *conn, const char *base, const char *tcol,
                                      const char *order, const struct trace_query *q,
                                      bool node_filter, struct fl_error **errp)
{
    struct fl_buf sql = {0};
    fl_buf_puts(&sql, base);
    if (q->node && node_filter) {
        fl_buf_puts(&sql, " AND n.name = :node");
    }
    if (q->disk) {
        fl_buf_puts(&sql, " AND d.name = :disk");
    }
    if (q->has_since) {
        fl_buf_printf(&sql, " AND %s >= :since", tcol);
    }
    if (q->has_until) {
        fl_buf_printf(&sql, " AND %s < :until", tcol);
    }
    fl_buf_printf(&sql, " ORDER BY %s", order);
    if (q->limit) {
        fl_buf_printf(&sql, " LIMIT %zu", q->limit);
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(conn, sql.data, -1, &st, NULL) != SQLITE_OK) {
        fl_error_setf(errp, EIO, "query: %s", sqlite3_errmsg(conn));
        st = NULL;
    } else {
        bind_common(st, q);
    }
    fl_buf_free(&sql);
    return st;
}

static bool print_ios(sqlite3 *conn, const struct trace_query *q, FILE *out, size_t *rows,
                      struct fl_error **errp)
{
    sqlite3_stmt *st = prepare_filtered(
        conn,
        "SELECT i.id, i.submit_ns, i.complete_ns, n.name, d.name, i.op, i.offset, i.length,"
        " i.result, i.fault, i.fua,"
        " (SELECT group_concat(cw.outcome) FROM crash_writes cw WHERE cw.io_id = i.id)"
        " FROM ios i JOIN disks d ON d.id = i.disk_id JOIN nodes n ON n.id = d.node_id WHERE 1",
        "i.submit_ns", "i.submit_ns, i.id", q, true, errp);
    if (!st) {
        return false;
    }
    struct out_table t = {.out = out,
                          .heads = {"TIME", "NODE", "DISK", "OP", "OFFSET", "LENGTH", "LATENCY",
                                    "RESULT", "FAULT", "AT CRASH"},
                          .ncols = 10};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t submit = sqlite3_column_int64(st, 1);
        bool done = !col_null(st, 2);
        int result = sqlite3_column_int(st, 8);
        if (q->json) {
            struct fl_buf b = {0};
            fl_buf_printf(&b, "{\"id\":%" PRId64 ",\"submit_ns\":%" PRId64,
                          (int64_t)sqlite3_column_int64(st, 0), submit);
            json_kv_int(&b, st, "complete_ns", 2);
            json_kv_str(&b, "node", col_text(st, 3));
            json_kv_str(&b, "disk", col_text(st, 4));
            json_kv_str(&b, "op", col_text(st, 5));
            json_kv_int(&b, st, "offset", 6);
            json_kv_int(&b, st, "length", 7);
            json_kv_int(&b, st, "result", 8);
            json_kv_str(&b, "fault", col_text(st, 9));
            fl_buf_printf(&b, ",\"fua\":%s", sqlite3_column_int(st, 10) ? "true" : "false");
            json_kv_str(&b, "at_crash", col_null(st, 11) ? NULL : col_text(st, 11));
            fl_buf_puts(&b, "}\n");
            fputs(b.data, out);
            fl_buf_free(&b);
        } else {
            char *cells[10];
            cells[0] = fmt_time(submit);
            cells[1] = fl_xstrdup(col_text(st, 3));
            cells[2] = fl_xstrdup(col_text(st, 4));
            cells[3] = sqlite3_column_int(st, 10) ? fl_xasprintf("%s+fua", col_text(st, 5))
                                                  : fl_xstrdup(col_text(st, 5));
            cells[4] = fl_xasprintf("%" PRId64, (int64_t)sqlite3_column_int64(st, 6));
            cells[5] = fl_xasprintf("%" PRId64, (int64_t)sqlite3_column_int64(st, 7));
            cells[6] = done ? fmt_dur(sqlite3_column_int64(st, 2) - submit) : fl_xstrdup("-");
            cells[7] = result ? fl_xasprintf("%s", strerror(result)) : fl_xstrdup("ok");
            cells[8] = fl_xstrdup(col_text(st, 9));
            cells[9] = fl_xstrdup(col_null(st, 11) ? "-" : col_text(st, 11));
            table_row(&t, cells);
        }
        (*rows)++;
    }
    return query_done(conn, st, rc, q->json ? NULL : &t, out, "ios", errp);
}

static bool print_lost(sqlite3 *conn, const struct trace_query *q, FILE *out, size_t *rows,
                       struct fl_error **errp)
{
    struct trace_query q2 = *q;
    q2.has_since = q2.has_until = false; /* the window applies to the crash time */
    struct fl_buf base = {0};
    fl_buf_puts(&base, "SELECT c.id, c.t_ns, n.name, d.name, c.policy, i.id, i.submit_ns, i.op,"
                       " i.offset, i.length, cw.outcome, cw.kept_bytes"
                       " FROM crash_writes cw JOIN crashes c ON c.id = cw.crash_id"
                       " JOIN ios i ON i.id = cw.io_id JOIN disks d ON d.id = c.disk_id"
                       " JOIN nodes n ON n.id = d.node_id WHERE 1");
    if (q->has_since) {
        fl_buf_puts(&base, " AND c.t_ns >= :since");
    }
    if (q->has_until) {
        fl_buf_puts(&base, " AND c.t_ns < :until");
    }
    sqlite3_stmt *st =
        prepare_filtered(conn, base.data, "c.t_ns", "c.t_ns, c.id, i.offset", &q2, true, errp);
    fl_buf_free(&base);
    if (!st) {
        return false;
    }
    bind_common(st, q);
    struct out_table t = {.out = out,
                          .heads = {"CRASH AT", "NODE", "DISK", "POLICY", "WRITE AT", "OFFSET",
                                    "LENGTH", "OUTCOME", "KEPT"},
                          .ncols = 9};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->json) {
            struct fl_buf b = {0};
            fl_buf_printf(&b, "{\"crash_id\":%" PRId64, (int64_t)sqlite3_column_int64(st, 0));
            json_kv_int(&b, st, "crash_ns", 1);
            json_kv_str(&b, "node", col_text(st, 2));
            json_kv_str(&b, "disk", col_text(st, 3));
            json_kv_str(&b, "policy", col_null(st, 4) ? NULL : col_text(st, 4));
            json_kv_int(&b, st, "io_id", 5);
            json_kv_int(&b, st, "write_ns", 6);
            json_kv_str(&b, "op", col_text(st, 7));
            json_kv_int(&b, st, "offset", 8);
            json_kv_int(&b, st, "length", 9);
            json_kv_str(&b, "outcome", col_text(st, 10));
            json_kv_int(&b, st, "kept_bytes", 11);
            fl_buf_puts(&b, "}\n");
            fputs(b.data, out);
            fl_buf_free(&b);
        } else {
            char *cells[9];
            cells[0] = fmt_time(sqlite3_column_int64(st, 1));
            cells[1] = fl_xstrdup(col_text(st, 2));
            cells[2] = fl_xstrdup(col_text(st, 3));
            cells[3] = fl_xstrdup(col_null(st, 4) ? "-" : col_text(st, 4));
            cells[4] = fmt_time(sqlite3_column_int64(st, 6));
            cells[5] = fl_xasprintf("%" PRId64, (int64_t)sqlite3_column_int64(st, 8));
            cells[6] = fl_xasprintf("%" PRId64, (int64_t)sqlite3_column_int64(st, 9));
            cells[7] = fl_xstrdup(col_text(st, 10));
            cells[8] = fl_xasprintf("%" PRId64, (int64_t)sqlite3_column_int64(st, 11));
            table_row(&t, cells);
        }
        (*rows)++;
    }
    return query_done(conn, st, rc, q->json ? NULL : &t, out, "lost-writes", errp);
}

static bool print_events(sqlite3 *conn, const struct trace_query *q, FILE *out, size_t *rows,
                         struct fl_error **errp)
{
    /* Events without a node concern every node, so --node keeps them. */
    const char *base = q->node ? "SELECT e.id, e.t_ns, e.end_ns, n.name, e.kind, e.detail"
                                 " FROM events e LEFT JOIN nodes n ON n.id = e.node_id"
                                 " WHERE (n.name = :node OR e.node_id IS NULL)"
                               : "SELECT e.id, e.t_ns, e.end_ns, n.name, e.kind, e.detail"
                                 " FROM events e LEFT JOIN nodes n ON n.id = e.node_id WHERE 1";
    struct trace_query q2 = *q;
    q2.disk = NULL; /* events do not name disks */
    sqlite3_stmt *st = prepare_filtered(conn, base, "e.t_ns", "e.t_ns, e.id", &q2, false, errp);
    if (!st) {
        return false;
    }
    struct out_table t = {
        .out = out, .heads = {"TIME", "UNTIL", "NODE", "KIND", "DETAIL"}, .ncols = 5};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->json) {
            struct fl_buf b = {0};
            fl_buf_printf(&b, "{\"id\":%" PRId64, (int64_t)sqlite3_column_int64(st, 0));
            json_kv_int(&b, st, "t_ns", 1);
            json_kv_int(&b, st, "end_ns", 2);
            json_kv_str(&b, "node", col_null(st, 3) ? NULL : col_text(st, 3));
            json_kv_str(&b, "kind", col_text(st, 4));
            json_kv_str(&b, "detail", col_null(st, 5) ? NULL : col_text(st, 5));
            fl_buf_puts(&b, "}\n");
            fputs(b.data, out);
            fl_buf_free(&b);
        } else {
            char *cells[5];
            cells[0] = fmt_time(sqlite3_column_int64(st, 1));
            cells[1] = col_null(st, 2) ? fl_xstrdup("-") : fmt_time(sqlite3_column_int64(st, 2));
            cells[2] = fl_xstrdup(col_null(st, 3) ? "*" : col_text(st, 3));
            cells[3] = fl_xstrdup(col_text(st, 4));
            cells[4] = fl_xstrdup(col_text(st, 5));
            table_row(&t, cells);
        }
        (*rows)++;
    }
    return query_done(conn, st, rc, q->json ? NULL : &t, out, "events", errp);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Per-link statistics over the frames the filters select (the frames
 * query, so every frame filter applies). */
struct link_acc {
    char *name, *net;
    uint64_t copies, sent, delivered, dropped, dup, corrupt, reordered, bytes;
    uint64_t reasons[TRACE_DROP_COUNT];
    int64_t *delays;
    size_t ndelays, alloc;
};

static int cmp_link_acc(const void *a, const void *b)
{
    const struct link_acc *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->net, y->net);
}

static bool print_links(sqlite3 *conn, const struct trace_query *q, FILE *out, size_t *rows,
                        struct fl_error **errp)
{
    struct trace_query fq = *q;
    fq.limit = 0;
    fq.json = false;
    sqlite3_stmt *st = trace_query_frames_stmt(conn, &fq, errp);
    if (!st) {
        return false;
    }
    struct link_acc *acc = NULL;
    size_t nacc = 0, aalloc = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *name = fl_xasprintf("%s->%s", col_text(st, 3), col_text(st, 4));
        const char *net = col_null(st, 5) ? "-" : col_text(st, 5);
        struct link_acc *a = NULL;
        for (size_t k = 0; k < nacc; k++) {
            if (!strcmp(acc[k].name, name) && !strcmp(acc[k].net, net)) {
                a = &acc[k];
            }
        }
        if (!a) {
            acc = fl_xgrow(acc, &aalloc, nacc + 1, sizeof(*acc));
            a = &acc[nacc++];
            memset(a, 0, sizeof(*a));
            a->name = name;
            a->net = fl_xstrdup(net);
        } else {
            free(name);
        }
        a->copies++;
        a->bytes += (uint64_t)sqlite3_column_int64(st, 8);
        if (sqlite3_column_int(st, 12) == 0) {
            a->sent++;
        } else {
            a->dup++;
        }
        a->corrupt += !col_null(st, 15);
        a->reordered += sqlite3_column_int(st, 13) != 0;
        if (col_null(st, 2)) {
            a->dropped++;
            int r = trace_drop_reason_parse(col_text(st, 11));
            a->reasons[r > 0 ? r : 0]++;
        } else {
            a->delivered++;
            a->delays = fl_xgrow(a->delays, &a->alloc, a->ndelays + 1, sizeof(*a->delays));
            a->delays[a->ndelays++] = sqlite3_column_int64(st, 2) - sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (nacc) {
        qsort(acc, nacc, sizeof(*acc), cmp_link_acc);
    }
    struct out_table t = {.out = out,
                          .heads = {"LINK", "NET", "SENT", "DELIVERED", "DROPPED", "DUP", "CORRUPT",
                                    "REORD", "P50", "P99", "MAX"},
                          .ncols = 11};
    for (size_t k = 0; k < nacc; k++) {
        struct link_acc *a = &acc[k];
        if (a->ndelays) {
            qsort(a->delays, a->ndelays, sizeof(*a->delays), cmp_i64);
        }
        int64_t p50 = a->ndelays ? a->delays[(a->ndelays - 1) / 2] : 0;
        int64_t p99 = a->ndelays ? a->delays[(a->ndelays - 1) * 99 / 100] : 0;
        int64_t max = a->ndelays ? a->delays[a->ndelays - 1] : 0;
        struct fl_buf why = {0};
        for (int r = 1; r < TRACE_DROP_COUNT; r++) {
            if (a->reasons[r]) {
                fl_buf_printf(&why, "%s%s:%" PRIu64, why.size ? "," : "",
                              trace_drop_reason_name((enum trace_drop_reason)r), a->reasons[r]);
            }
        }
        if (q->json) {
            struct fl_buf b = {0};
            fl_buf_puts(&b, "{\"link\":");
            fl_buf_json_string(&b, a->name);
            fl_buf_puts(&b, ",\"network\":");
            fl_buf_json_string(&b, a->net);
            fl_buf_printf(&b,
                          ",\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"dropped\":%" PRIu64
                          ",\"duplicated\":%" PRIu64 ",\"corrupted\":%" PRIu64
                          ",\"reordered\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"dropped_by\":{",
                          a->sent, a->delivered, a->dropped, a->dup, a->corrupt, a->reordered,
                          a->bytes);
            bool first = true;
            for (int r = 1; r < TRACE_DROP_COUNT; r++) {
                if (a->reasons[r]) {
                    fl_buf_printf(&b, "%s\"%s\":%" PRIu64, first ? "" : ",",
                                  trace_drop_reason_name((enum trace_drop_reason)r), a->reasons[r]);
                    first = false;
                }
            }
            fl_buf_puts(&b, "}");
            if (a->ndelays) {
                fl_buf_printf(&b,
                              ",\"delay_p50_ns\":%" PRId64 ",\"delay_p99_ns\":%" PRId64
                              ",\"delay_max_ns\":%" PRId64 "}\n",
                              p50, p99, max);
            } else {
                fl_buf_puts(&b, ",\"delay_p50_ns\":null,\"delay_p99_ns\":null,"
                                "\"delay_max_ns\":null}\n");
            }
            fputs(b.data, out);
            fl_buf_free(&b);
        } else {
            char *cells[11];
            cells[0] = fl_xstrdup(a->name);
            cells[1] = fl_xstrdup(a->net);
            cells[2] = fl_xasprintf("%" PRIu64, a->sent);
            cells[3] = fl_xasprintf("%" PRIu64, a->delivered);
            cells[4] = a->dropped ? fl_xasprintf("%" PRIu64 " (%s)", a->dropped, why.data)
                                  : fl_xstrdup("0");
            cells[5] = fl_xasprintf("%" PRIu64, a->dup);
            cells[6] = fl_xasprintf("%" PRIu64, a->corrupt);
            cells[7] = fl_xasprintf("%" PRIu64, a->reordered);
            cells[8] = a->ndelays ? fmt_dur(p50) : fl_xstrdup("-");
            cells[9] = a->ndelays ? fmt_dur(p99) : fl_xstrdup("-");
            cells[10] = a->ndelays ? fmt_dur(max) : fl_xstrdup("-");
            table_row(&t, cells);
        }
        fl_buf_free(&why);
        (*rows)++;
        free(a->name);
        free(a->net);
        free(a->delays);
    }
    free(acc);
    if (!q->json) {
        table_print(&t, out);
    }
    if (rc != SQLITE_DONE) {
        fl_error_setf(errp, EIO, "links query: %s", sqlite3_errmsg(conn));
        return false;
    }
    return true;
}

bool trace_query_print(struct trace_db *db, const struct trace_query *q, FILE *out, size_t *rows,
                       struct fl_error **errp)
{
    size_t n = 0;
    sqlite3 *conn = trace_db_sqlite(db);
    if (!trace_query_validate(conn, q, errp)) {
        return false;
    }
    bool ok;
    switch (q->kind) {
    case TRACE_QUERY_FRAMES:
        ok = print_frames(conn, q, out, &n, errp);
        break;
    case TRACE_QUERY_IOS:
        ok = print_ios(conn, q, out, &n, errp);
        break;
    case TRACE_QUERY_LOST:
        ok = print_lost(conn, q, out, &n, errp);
        break;
    case TRACE_QUERY_EVENTS:
        ok = print_events(conn, q, out, &n, errp);
        break;
    case TRACE_QUERY_LINKS:
        ok = print_links(conn, q, out, &n, errp);
        break;
    default:
        fl_error_setf(errp, EINVAL, "unknown query kind %d", (int)q->kind);
        ok = false;
    }
    if (rows) {
        *rows = n;
    }
    return ok;
}
