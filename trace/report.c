/*
 * `faultline report`: one self-contained report.html per run.
 *
 * C reads the database and embeds what the pictures need as one JSON
 * object (aggregates, never every frame of a long run); report.js (inlined,
 * see report-assets.c generated from report.css/report.js) draws the SVG.
 * The verdict and the checks are also written as plain HTML so they are
 * readable without JavaScript.
 *
 *   run.db ──SQL──▶ data JSON ─┐
 *   report.css ────────────────┼──▶ report.html (no external fetches)
 *   report.js  ────────────────┘
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/db-internal.h"

/* report-assets.c (generated at build time) */
extern const char trace_report_css[];
extern const char trace_report_js[];

/* Frames drawn one by one in the space-time diagram up to this many;
 * beyond it the diagram shows per-link aggregates per time bucket. */
#define REPORT_MAX_FRAMES 1500
/* Time buckets of the aggregated series. */
#define REPORT_BUCKETS 200
/* Lost/torn writes listed per crash. */
#define REPORT_MAX_CRASH_WRITES 500
/* Check output kept in the report. */
#define REPORT_MAX_OUTPUT 16384

/* JSON string safe inside <script>.  Guest text (check output) may be any
 * bytes: invalid UTF-8 becomes U+FFFD, so the page always parses. */
static void json_str(struct fl_buf *b, const char *s)
{
    if (!s) {
        fl_buf_puts(b, "null");
        return;
    }
    fl_text_json(b, s, strlen(s), true);
}

/* HTML text, well-formed whatever the bytes. */
static void html_str(struct fl_buf *b, const char *s)
{
    fl_text_xml(b, s ? s : "", s ? strlen(s) : 0);
}

struct report {
    sqlite3 *conn;
    struct fl_buf json;
    struct fl_error **errp;
    bool failed;
    int64_t t0, t1; /* run-clock range shown */
    int64_t bucket_ns;
    char *run_dir; /* the database's directory, for replay commands */
};

static sqlite3_stmt *prep(struct report *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (!r->failed && sqlite3_prepare_v2(r->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        fl_error_setf(r->errp, EIO, "report: %s (in: %s)", sqlite3_errmsg(r->conn), sql);
        r->failed = true;
        st = NULL;
    }
    return st;
}

static int64_t one_int(struct report *r, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st = prep(r, sql);
    int64_t v = dflt;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* Writes one column as a JSON value. */
static void json_col(struct fl_buf *b, sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL:
        fl_buf_puts(b, "null");
        break;
    case SQLITE_INTEGER:
        fl_buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(st, c));
        break;
    case SQLITE_FLOAT:
        fl_buf_printf(b, "%.17g", sqlite3_column_double(st, c));
        break;
    default:
        json_str(b, (const char *)sqlite3_column_text(st, c));
    }
}

/* "key": [[col0, col1, ...], ...] for every row of sql. */
static void json_rows(struct report *r, const char *key, const char *sql)
{
    struct fl_buf *b = &r->json;
    fl_buf_printf(b, "\"%s\":[", key);
    sqlite3_stmt *st = prep(r, sql);
    bool first = true;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        fl_buf_puts(b, first ? "[" : ",[");
        first = false;
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            if (c) {
                fl_buf_puts(b, ",");
            }
            json_col(b, st, c);
        }
        fl_buf_puts(b, "]");
    }
    sqlite3_finalize(st);
    fl_buf_puts(b, "],\n");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Delay percentiles per link: "delays": {link_id: [p50, p90, p99, max]}. */
static void json_delays(struct report *r)
{
    struct fl_buf *b = &r->json;
    fl_buf_puts(b, "\"delays\":{");
    sqlite3_stmt *st = prep(r, "SELECT link_id, delivered_ns - sent_ns FROM frames"
                               " WHERE fate = 'delivered' ORDER BY link_id");
    int64_t *v = NULL;
    size_t n = 0, alloc = 0;
    int64_t cur = -1;
    bool first = true;
    for (;;) {
        bool row = st && sqlite3_step(st) == SQLITE_ROW;
        int64_t link = row ? sqlite3_column_int64(st, 0) : -2;
        if (link != cur && n) {
            qsort(v, n, sizeof(*v), cmp_i64);
            fl_buf_printf(b, "%s\"%" PRId64 "\":[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
                          first ? "" : ",", cur, v[(n - 1) * 50 / 100], v[(n - 1) * 90 / 100],
                          v[(n - 1) * 99 / 100], v[n - 1]);
            first = false;
            n = 0;
        }
        if (!row) {
            break;
        }
        cur = link;
        v = fl_xgrow(v, &alloc, n + 1, sizeof(*v));
        v[n++] = sqlite3_column_int64(st, 1);
    }
    free(v);
    sqlite3_finalize(st);
    fl_buf_puts(b, "},\n");
}

/* I/O latency percentiles per disk and op. */
static void json_io_latency(struct report *r)
{
    struct fl_buf *b = &r->json;
    fl_buf_puts(b, "\"io_latency\":[");
    sqlite3_stmt *st =
        prep(r, "SELECT disk_id, op, complete_ns - submit_ns FROM ios"
                " WHERE complete_ns IS NOT NULL ORDER BY disk_id, op, complete_ns - submit_ns");
    int64_t *v = NULL;
    size_t n = 0, alloc = 0;
    int64_t cur_disk = -1;
    char *cur_op = NULL;
    bool first = true;
    for (;;) {
        bool row = st && sqlite3_step(st) == SQLITE_ROW;
        int64_t disk = row ? sqlite3_column_int64(st, 0) : -2;
        const char *op = row ? (const char *)sqlite3_column_text(st, 1) : "";
        if (n && (disk != cur_disk || strcmp(op, cur_op))) {
            fl_buf_printf(b, "%s[%" PRId64 ",", first ? "" : ",", cur_disk);
            json_str(b, cur_op);
            fl_buf_printf(b, ",%zu,%" PRId64 ",%" PRId64 ",%" PRId64 "]", n, v[(n - 1) / 2],
                          v[(n - 1) * 99 / 100], v[n - 1]);
            first = false;
            n = 0;
        }
        if (!row) {
            break;
        }
        if (!cur_op || strcmp(op, cur_op)) {
            free(cur_op);
            cur_op = fl_xstrdup(op);
        }
        cur_disk = disk;
        v = fl_xgrow(v, &alloc, n + 1, sizeof(*v));
        v[n++] = sqlite3_column_int64(st, 2);
    }
    free(v);
    free(cur_op);
    sqlite3_finalize(st);
    fl_buf_puts(b, "],\n");
}

static void gather(struct report *r)
{
    struct fl_buf *b = &r->json;
    fl_buf_puts(b, "{\n");
    /* time range: boot (first event) .. end of run or last record */
    int64_t lo = one_int(r,
                         "SELECT min(t) FROM (SELECT min(t_ns) t FROM events"
                         " UNION ALL SELECT min(sent_ns) FROM frames"
                         " UNION ALL SELECT min(submit_ns) FROM ios UNION ALL SELECT 0)",
                         0);
    int64_t hi = one_int(r,
                         "SELECT max(t) FROM (SELECT max(coalesce(end_ns, t_ns)) t FROM events"
                         " UNION ALL SELECT max(coalesce(delivered_ns, sent_ns)) FROM frames"
                         " UNION ALL SELECT max(coalesce(complete_ns, submit_ns)) FROM ios"
                         " UNION ALL SELECT max(end_ns) FROM checks"
                         " UNION ALL SELECT ended_ns FROM run)",
                         0);
    if (hi <= lo) {
        hi = lo + FL_NS_PER_SEC;
    }
    r->t0 = lo;
    r->t1 = hi;
    r->bucket_ns = (hi - lo + REPORT_BUCKETS - 1) / REPORT_BUCKETS;
    if (r->bucket_ns < 1) {
        r->bucket_ns = 1;
    }
    fl_buf_printf(
        b, "\"t0\":%" PRId64 ",\"t1\":%" PRId64 ",\"bucket_ns\":%" PRId64 ",\"buckets\":%d,\n",
        r->t0, r->t1, r->bucket_ns, REPORT_BUCKETS);
    json_rows(r, "run",
              "SELECT scenario_name, scenario_path, seed, faultline_version, host, accel,"
              " started_wall_ns, ended_ns, verdict, verdict_detail, scenario_text FROM run");
    json_rows(r, "nodes", "SELECT id, name FROM nodes ORDER BY id");
    json_rows(r, "links",
              "SELECT l.id, l.src_node_id, l.dst_node_id, n.name FROM links l"
              " LEFT JOIN networks n ON n.id = l.network_id ORDER BY l.id");
    json_rows(r, "link_params",
              "SELECT link_id, t_ns, params FROM link_params ORDER BY link_id, t_ns");
    json_rows(r, "events",
              "SELECT id, t_ns, end_ns, kind, node_id, detail FROM events ORDER BY t_ns, id");
    json_rows(r, "link_stats",
              "SELECT link_id, sum(copy = 0), sum(fate = 'delivered'), sum(fate = 'dropped'),"
              " sum(copy > 0), sum(corrupt_mask IS NOT NULL), sum(reordered),"
              " sum(size) FROM frames GROUP BY link_id ORDER BY link_id");
    json_rows(r, "link_drops",
              "SELECT link_id, reason, count(*) FROM frames WHERE fate = 'dropped'"
              " GROUP BY link_id, reason ORDER BY link_id, reason");
    json_delays(r);
    /* what each window (partition, lasting fault) did to every link */
    json_rows(r, "window_frames",
              "SELECT e.id, f.link_id, coalesce(f.reason, 'delivered'), count(*)"
              " FROM events e JOIN frames f ON f.sent_ns >= e.t_ns AND f.sent_ns < e.end_ns"
              " JOIN links l ON l.id = f.link_id"
              " WHERE e.end_ns IS NOT NULL AND (e.node_id IS NULL"
              "   OR l.src_node_id = e.node_id OR l.dst_node_id = e.node_id)"
              " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
    char *sql = fl_xasprintf("SELECT link_id, (sent_ns - (%" PRId64 ")) / %" PRId64 " AS b,"
                             " sum(fate = 'delivered'), sum(fate = 'dropped'),"
                             " CAST(avg(delivered_ns - sent_ns) AS INTEGER)"
                             " FROM frames GROUP BY link_id, b ORDER BY link_id, b",
                             r->t0, r->bucket_ns);
    json_rows(r, "series", sql);
    free(sql);
    sql = fl_xasprintf("SELECT link_id, (sent_ns - (%" PRId64 ")) / %" PRId64 " AS b, reason,"
                       " count(*) FROM frames WHERE fate = 'dropped'"
                       " GROUP BY link_id, b, reason ORDER BY link_id, b",
                       r->t0, r->bucket_ns);
    json_rows(r, "series_drops", sql);
    free(sql);
    int64_t nframes = one_int(r, "SELECT count(*) FROM frames", 0);
    fl_buf_printf(b, "\"frame_count\":%" PRId64 ",\n", nframes);
    if (nframes <= REPORT_MAX_FRAMES) {
        json_rows(r, "frames",
                  "SELECT link_id, sent_ns, delivered_ns, fate, reason, copy,"
                  " corrupt_mask IS NOT NULL, reordered, size FROM frames ORDER BY sent_ns, id");
    } else {
        fl_buf_puts(b, "\"frames\":null,\n");
    }
    json_rows(r, "disks",
              "SELECT d.id, d.node_id, d.name, d.size_bytes, count(i.id),"
              " sum(i.op = 'read'), sum(i.op = 'write'), sum(i.op = 'flush'),"
              " sum(i.op IN ('trim', 'write-zeroes')), sum(i.result != 0),"
              " sum(i.fault != 'none'), sum(CASE WHEN i.op = 'write' THEN i.length END),"
              " sum(CASE WHEN i.op = 'read' THEN i.length END)"
              " FROM disks d LEFT JOIN ios i ON i.disk_id = d.id GROUP BY d.id ORDER BY d.id");
    json_io_latency(r);
    sql = fl_xasprintf("SELECT disk_id, (submit_ns - (%" PRId64 ")) / %" PRId64 " AS b,"
                       " sum(op = 'read'), sum(op = 'write' OR op = 'write-zeroes'"
                       " OR op = 'trim'), sum(op = 'flush'), sum(result != 0)"
                       " FROM ios GROUP BY disk_id, b ORDER BY disk_id, b",
                       r->t0, r->bucket_ns);
    json_rows(r, "io_series", sql);
    free(sql);
    json_rows(
        r, "io_errors",
        "SELECT disk_id, submit_ns, op, offset, length, result, fault FROM ios"
        " WHERE result != 0 OR fault = 'error' OR fault = 'full' ORDER BY submit_ns LIMIT 500");
    json_rows(r, "crashes",
              "SELECT c.id, c.disk_id, c.t_ns, c.policy,"
              " sum(cw.outcome = 'lost'), sum(cw.outcome = 'torn'), sum(cw.outcome = 'kept'),"
              " sum(CASE cw.outcome WHEN 'lost' THEN i.length WHEN 'torn'"
              "   THEN i.length - cw.kept_bytes ELSE 0 END)"
              " FROM crashes c LEFT JOIN crash_writes cw ON cw.crash_id = c.id"
              " LEFT JOIN ios i ON i.id = cw.io_id GROUP BY c.id ORDER BY c.t_ns");
    sql = fl_xasprintf("SELECT crash_id, io_id, submit_ns, offset, length, outcome, kept_bytes"
                       " FROM (SELECT cw.*, i.submit_ns, i.offset, i.length, row_number()"
                       "  OVER (PARTITION BY cw.crash_id ORDER BY i.submit_ns) AS k"
                       "  FROM crash_writes cw JOIN ios i ON i.id = cw.io_id)"
                       " WHERE k <= %d ORDER BY crash_id, submit_ns",
                       REPORT_MAX_CRASH_WRITES);
    json_rows(r, "crash_writes", sql);
    free(sql);
    sql = fl_xasprintf("SELECT name, node_id, command, exit_status, passed, start_ns, end_ns,"
                       " substr(stdout, 1, %d), substr(stderr, 1, %d) FROM checks ORDER BY id",
                       REPORT_MAX_OUTPUT, REPORT_MAX_OUTPUT);
    json_rows(r, "checks", sql);
    free(sql);
    /* recorded segments (docs/record-replay.md); a database written before
     * rr_segments existed has none */
    if (one_int(r, "SELECT count(*) FROM sqlite_master WHERE name = 'rr_segments'", 0)) {
        json_rows(r, "rr_segments",
                  "SELECT node_id, segment, start_ns, end_ns, ended, icount FROM rr_segments"
                  " ORDER BY node_id, segment");
    } else {
        fl_buf_puts(b, "\"rr_segments\":[],\n");
    }
    fl_buf_puts(b, "\"run_dir\":");
    json_str(b, r->run_dir);
    fl_buf_puts(b, ",\n");
    fl_buf_puts(b, "\"reasons\":[");
    for (int k = 1; k < TRACE_DROP_COUNT; k++) {
        fl_buf_printf(b, "%s\"%s\"", k > 1 ? "," : "",
                      trace_drop_reason_name((enum trace_drop_reason)k));
    }
    fl_buf_printf(b, "],\"schema_version\":%d}", TRACE_SCHEMA_VERSION);
}

/* The part readable without JavaScript: verdict and checks. */
static void static_html(struct report *r, struct fl_buf *h)
{
    sqlite3_stmt *st = prep(r, "SELECT scenario_name, verdict, verdict_detail, seed FROM run");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(st, 1);
        fl_buf_puts(h, "<noscript><div class=\"static\"><h1>");
        html_str(h, (const char *)sqlite3_column_text(st, 0));
        fl_buf_puts(h, " &mdash; ");
        html_str(h, verdict ? verdict : "unfinished");
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            fl_buf_puts(h, ": ");
            html_str(h, (const char *)sqlite3_column_text(st, 2));
        }
        fl_buf_puts(h, "</h1>");
    } else {
        fl_buf_puts(h, "<noscript><div class=\"static\">");
    }
    sqlite3_finalize(st);
    st = prep(r, "SELECT name, passed, exit_status, command FROM checks ORDER BY id");
    fl_buf_puts(h, "<table><tr><th>check</th><th>result</th><th>exit</th><th>command</th></tr>");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        fl_buf_puts(h, "<tr><td>");
        html_str(h, (const char *)sqlite3_column_text(st, 0));
        fl_buf_printf(h, "</td><td>%s</td><td>%d</td><td><code>",
                      sqlite3_column_int(st, 1) ? "passed" : "FAILED", sqlite3_column_int(st, 2));
        html_str(h, (const char *)sqlite3_column_text(st, 3));
        fl_buf_puts(h, "</code></td></tr>");
    }
    sqlite3_finalize(st);
    fl_buf_puts(h, "</table><p>The timeline, link statistics, message diagram and disk I/O need"
                   " JavaScript; everything is in this file (no network access).</p>"
                   "</div></noscript>\n");
}

bool trace_report_write_to(const char *db_path, const char *html_path, struct fl_error **errp)
{
    struct trace_db *db = trace_db_open_reader(db_path, NULL, NULL, errp);
    if (!db) {
        return false;
    }
    struct report r = {.conn = trace_db_sqlite(db), .errp = errp};
    const char *slash = strrchr(db_path, '/');
    r.run_dir = slash ? fl_xstrndup(db_path, slash == db_path ? 1 : (size_t)(slash - db_path))
                      : fl_xstrdup(".");
    /* one snapshot of a database that may still be written */
    sqlite3_exec(r.conn, "BEGIN", NULL, NULL, NULL);
    gather(&r);
    struct fl_buf h = {0};
    if (!r.failed) {
        fl_buf_puts(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                        "<meta name=\"viewport\" content=\"width=device-width\">\n"
                        "<meta name=\"generator\" content=\"faultline " FL_VERSION "\">\n"
                        "<title>faultline report</title>\n<style>\n");
        fl_buf_puts(&h, trace_report_css);
        fl_buf_puts(&h, "</style></head>\n<body data-rendered=\"no\">\n");
        static_html(&r, &h);
        fl_buf_puts(&h, "<div id=\"app\"></div>\n"
                        "<script id=\"fl-data\" type=\"application/json\">\n");
        fl_buf_append(&h, r.json.data, r.json.size);
        fl_buf_puts(&h, "\n</script>\n<script>\n");
        fl_buf_puts(&h, trace_report_js);
        fl_buf_puts(&h, "</script>\n</body></html>\n");
    }
    sqlite3_exec(r.conn, "COMMIT", NULL, NULL, NULL);
    fl_buf_free(&r.json);
    free(r.run_dir);
    trace_db_close(db);
    if (r.failed) {
        fl_buf_free(&h);
        return false;
    }
    /* write to a temporary file and rename: a reader never sees half a
     * report */
    char *tmp = fl_xasprintf("%s.tmp", html_path);
    bool ok = fl_write_file(tmp, h.data, h.size, errp);
    fl_buf_free(&h);
    if (ok && rename(tmp, html_path) != 0) {
        fl_error_setf_errno(errp, errno, "rename '%s' to '%s'", tmp, html_path);
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

bool trace_report_write(const char *run_dir, struct fl_error **errp)
{
    char *db_path = fl_xasprintf("%s/run.db", run_dir);
    char *html = fl_xasprintf("%s/report.html", run_dir);
    bool ok = trace_report_write_to(db_path, html, errp);
    free(db_path);
    free(html);
    return ok;
}
