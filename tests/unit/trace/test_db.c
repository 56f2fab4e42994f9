/* Unit tests for the run database writers: interning, every record kind,
 * the epoch shift, batching, reopening, version checks, and a writer
 * killed with SIGKILL. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "trace/internal.h"
#include "trace/trace.h"

struct fixture {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct fixture *f = fl_xcalloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/fl-trace-db-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/run.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fl_rm_rf(f->dir);
    free(f);
    return 0;
}

static sqlite3 *sql_open(const char *path)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return c;
}

static int64_t sql_int(sqlite3 *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = fl_xvasprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(c));
    }
    int64_t v = INT64_MIN;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    free(sql);
    return v;
}

static char *sql_text(sqlite3 *c, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    char *v = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = fl_xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
}

static struct trace_db *open_db(const char *path)
{
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open(path, &err);
    if (!db) {
        fail_msg("%s", err->msg);
    }
    return db;
}

static void test_interning(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n1 = trace_node_id(db, "n1"), n2 = trace_node_id(db, "n2");
    assert_int_equal(n1, 1);
    assert_int_equal(n2, 2);
    assert_int_equal(trace_node_id(db, "n1"), 1);
    assert_int_equal(trace_node_id(db, ""), -EINVAL);
    assert_int_equal(trace_node_id(db, NULL), -EINVAL);
    int64_t lan = trace_network_id(db, "lan");
    assert_int_equal(lan, 1);
    assert_int_equal(trace_network_id(db, "lan"), 1);
    assert_int_equal(trace_network_id(db, "wan"), 2);
    int64_t e1 = trace_nic_id(db, n1, lan, "eth0", "52:54:00:00:00:01");
    assert_int_equal(e1, 1);
    assert_int_equal(trace_nic_id(db, n1, lan, "eth0", NULL), 1);
    assert_int_equal(trace_nic_id(db, n2, lan, "eth0", NULL), 2);
    assert_int_equal(trace_nic_id(db, 99, lan, "eth0", NULL), -ENOENT);
    assert_int_equal(trace_nic_id(db, n1, 99, "eth1", NULL), -ENOENT);
    assert_int_equal(trace_nic_id(db, n1, lan, "", NULL), -EINVAL);
    assert_int_equal(trace_link_id(db, lan, n1, n2), 1);
    assert_int_equal(trace_link_id(db, lan, n2, n1), 2);
    assert_int_equal(trace_link_id(db, lan, n1, n2), 1);
    assert_int_equal(trace_link_id(db, lan, n1, 7), -ENOENT);
    assert_int_equal(trace_link_id(db, 0, n1, n2), 3); /* no network: another link */
    assert_int_equal(trace_disk_id(db, n1, "data", 1 << 20), 1);
    assert_int_equal(trace_disk_id(db, n1, "data", 1 << 20), 1);
    assert_int_equal(trace_disk_id(db, n2, "data", 0), 2);
    assert_int_equal(trace_disk_id(db, 0, "data", 0), -ENOENT);
    assert_int_equal(trace_db_flush(db), 0);
    trace_db_close(db);

    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM nodes"), 2);
    assert_int_equal(sql_int(c, "SELECT id FROM nodes WHERE name = 'n2'"), 2);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM networks"), 2);
    assert_int_equal(sql_int(c, "SELECT network_id FROM nics WHERE id = 2"), 1);
    char *mac = sql_text(c, "SELECT mac FROM nics WHERE id = 1");
    assert_string_equal(mac, "52:54:00:00:00:01");
    free(mac);
    assert_int_equal(sql_int(c, "SELECT src_node_id FROM links WHERE id = 2"), 2);
    assert_int_equal(sql_int(c, "SELECT network_id FROM links WHERE id = 3"), INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT size_bytes FROM disks WHERE id = 1"), 1 << 20);
    assert_int_equal(sql_int(c, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
    char *mode = sql_text(c, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    /* indexes exist after close */
    assert_int_equal(
        sql_int(c, "SELECT count(*) FROM sqlite_master WHERE name = 'frames_by_link_time'"), 1);
    sqlite3_close(c);
}

static void test_frames_and_epoch(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n1 = trace_node_id(db, "n1"), n2 = trace_node_id(db, "n2");
    int64_t lan = trace_network_id(db, "lan");
    int64_t e1 = trace_nic_id(db, n1, lan, "eth0", NULL);
    int64_t e2 = trace_nic_id(db, n2, lan, "eth0", NULL);
    int64_t l = trace_link_id(db, lan, n1, n2);
    const int64_t t0 = 1000 * FL_NS_PER_SEC;

    /* written before the epoch is set: shifted when it is */
    struct trace_frame boot = {.sent_ns = t0 - 500,
                               .delivered_ns = t0 - 400,
                               .link_id = l,
                               .src_nic_id = e1,
                               .dst_nic_id = e2,
                               .pcap_index = -1,
                               .size = 42,
                               .hash = 7,
                               .fate = TRACE_FATE_DELIVERED};
    assert_int_equal(trace_frame(db, &boot), 0);
    assert_int_equal(trace_db_set_epoch(db, t0), 0);
    assert_int_equal(trace_db_epoch(db), t0);

    struct trace_frame drop = {.sent_ns = t0 + 100,
                               .delivered_ns = 12345,
                               .link_id = l,
                               .src_nic_id = e1,
                               .pcap_index = 3,
                               .size = 98,
                               .hash = 0xdeadbeef,
                               .fate = TRACE_FATE_DROPPED,
                               .reason = TRACE_DROP_PARTITION};
    assert_int_equal(trace_frame(db, &drop), 0);
    struct trace_frame dup = {.sent_ns = t0 + 200,
                              .delivered_ns = t0 + 10200,
                              .link_id = l,
                              .src_nic_id = e1,
                              .dst_nic_id = e2,
                              .pcap_index = -1,
                              .size = 60,
                              .hash = 1,
                              .fate = TRACE_FATE_DELIVERED,
                              .copy = 2,
                              .reordered = 1,
                              .corrupt_offset = 17,
                              .corrupt_mask = 0x81};
    assert_int_equal(trace_frame(db, &dup), 0);

    /* negative cases */
    struct trace_frame bad = dup;
    bad.fate = TRACE_FATE_COUNT;
    assert_int_equal(trace_frame(db, &bad), -EINVAL);
    bad = dup;
    bad.reason = TRACE_DROP_LOSS; /* delivered with a drop reason */
    assert_int_equal(trace_frame(db, &bad), -EINVAL);
    bad = drop;
    bad.reason = TRACE_DROP_NONE; /* dropped without a reason */
    assert_int_equal(trace_frame(db, &bad), -EINVAL);
    bad = dup;
    bad.delivered_ns = TRACE_NO_TIME;
    assert_int_equal(trace_frame(db, &bad), -EINVAL);
    bad = dup;
    bad.link_id = 0;
    assert_int_equal(trace_frame(db, &bad), -EINVAL);
    bad.link_id = 42;
    assert_int_equal(trace_frame(db, &bad), -ENOENT);
    assert_int_equal(trace_frame(db, NULL), -EINVAL);
    assert_int_equal(trace_db_set_epoch(db, TRACE_NO_TIME), -EINVAL);

    trace_db_close(db);
    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM frames"), 3);
    assert_int_equal(sql_int(c, "SELECT sent_ns FROM frames WHERE hash = 7"), -500);
    assert_int_equal(sql_int(c, "SELECT delivered_ns FROM frames WHERE hash = 7"), -400);
    assert_int_equal(sql_int(c, "SELECT sent_ns FROM frames WHERE hash = 3735928559"), 100);
    assert_int_equal(sql_int(c, "SELECT delivered_ns FROM frames WHERE hash = 3735928559"),
                     INT64_MIN); /* NULL: dropped frames have no delivery time */
    assert_int_equal(sql_int(c, "SELECT pcap_index FROM frames WHERE hash = 3735928559"), 3);
    assert_int_equal(sql_int(c, "SELECT reason = 'partition' FROM frames WHERE hash = 3735928559"),
                     1);
    assert_int_equal(sql_int(c, "SELECT dst_nic_id FROM frames WHERE hash = 3735928559"),
                     INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT reason IS NULL FROM frames WHERE hash = 1"), 1);
    assert_int_equal(sql_int(c, "SELECT copy FROM frames WHERE hash = 1"), 2);
    assert_int_equal(sql_int(c, "SELECT reordered FROM frames WHERE hash = 1"), 1);
    assert_int_equal(sql_int(c, "SELECT corrupt_offset FROM frames WHERE hash = 1"), 17);
    assert_int_equal(sql_int(c, "SELECT corrupt_mask FROM frames WHERE hash = 1"), 0x81);
    assert_int_equal(sql_int(c, "SELECT pcap_index FROM frames WHERE hash = 1"), INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT delay_ns FROM frames_named WHERE hash = 1"), 10000);
    assert_int_equal(sql_int(c, "SELECT epoch_mono_ns FROM run"), t0);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM frames_named WHERE src_node = 'n1'"
                                " AND dst_node = 'n2' AND network = 'lan'"),
                     3);
    sqlite3_close(c);
}

static void test_run_events_checks(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    const int64_t t0 = 50 * FL_NS_PER_SEC;
    assert_int_equal(trace_db_set_epoch(db, t0), 0);
    int64_t n1 = trace_node_id(db, "n1");
    int64_t lan = trace_network_id(db, "lan");
    int64_t l = trace_link_id(db, lan, n1, n1);
    struct trace_run_info info = {
        .scenario_name = "s", .scenario_text = "name: s\n", .seed = 7, .started_wall_ns = 123};
    assert_int_equal(trace_run_begin(db, &info), 0);
    assert_int_equal(trace_run_begin(db, &info), -EEXIST);
    struct trace_run_info noname = {0};
    assert_int_equal(trace_run_begin(db, &noname), -EINVAL);
    info.seed = UINT64_MAX;

    assert_int_equal(trace_link_params(db, l, t0 + 5, "delay=10ms"), 0);
    assert_int_equal(trace_link_params(db, 9, t0, "delay=10ms"), -ENOENT);
    assert_int_equal(trace_link_params(db, l, t0, NULL), -EINVAL);

    int64_t ev = trace_event(db, t0 + 1000, "partition", 0, "{n1} | {n2}");
    assert_int_equal(ev, 1);
    assert_int_equal(trace_event(db, t0 + 2000, "exit", n1, "status 1"), 2);
    assert_int_equal(trace_event(db, t0, "", n1, NULL), -EINVAL);
    assert_int_equal(trace_event(db, t0, "x", 5, NULL), -ENOENT);
    assert_int_equal(trace_event_end(db, ev, t0 + 3000), 0);
    assert_int_equal(trace_event_end(db, 99, t0), -ENOENT);

    struct trace_check ck = {.name = "healthy",
                             .node_id = n1,
                             .command = "true",
                             .exit_status = 3,
                             .out = "o",
                             .err = "e",
                             .passed = false,
                             .start_ns = t0 + 10,
                             .end_ns = TRACE_NO_TIME};
    assert_int_equal(trace_check(db, &ck), 0);
    ck.node_id = 7;
    assert_int_equal(trace_check(db, &ck), -ENOENT);
    ck.name = NULL;
    assert_int_equal(trace_check(db, &ck), -EINVAL);

    assert_int_equal(trace_run_end(db, "maybe", NULL, t0), -EINVAL);
    assert_int_equal(trace_run_end(db, "fail", "1 check failed", t0 + 9000), 0);
    trace_db_close(db);

    sqlite3 *c = sql_open(f->path);
    char *s = sql_text(c, "SELECT scenario_name || '|' || scenario_text || '|' || seed || '|' ||"
                          " faultline_version || '|' || verdict || '|' || verdict_detail FROM run");
    assert_string_equal(s, "s|name: s\n|7|" FL_VERSION "|fail|1 check failed");
    free(s);
    assert_int_equal(sql_int(c, "SELECT ended_ns FROM run"), 9000);
    assert_int_equal(sql_int(c, "SELECT started_wall_ns FROM run"), 123);
    assert_int_equal(sql_int(c, "SELECT t_ns FROM link_params"), 5);
    assert_int_equal(sql_int(c, "SELECT end_ns FROM events WHERE id = 1"), 3000);
    assert_int_equal(sql_int(c, "SELECT node_id FROM events WHERE id = 1"), INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT node_id FROM events WHERE id = 2"), 1);
    assert_int_equal(sql_int(c, "SELECT end_ns FROM events WHERE id = 2"), INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT exit_status FROM checks"), 3);
    assert_int_equal(sql_int(c, "SELECT passed FROM checks"), 0);
    assert_int_equal(sql_int(c, "SELECT start_ns FROM checks"), 10);
    assert_int_equal(sql_int(c, "SELECT end_ns FROM checks"), INT64_MIN);
    sqlite3_close(c);
}

/* Recorded segments: one rr_segments row each, times on the run clock,
 * the icount NULL when the segment has none; a rewrite replaces. */
static void test_rr_segments(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n2 = trace_node_id(db, "n2");
    const int64_t t0 = 500 * FL_NS_PER_SEC;
    assert_int_equal(trace_db_set_epoch(db, t0), 0);
    struct trace_rr_segment s0 = {.node_id = n2,
                                  .segment = 0,
                                  .start_ns = t0 - 3 * FL_NS_PER_SEC,
                                  .end_ns = t0 + 5 * FL_NS_PER_SEC,
                                  .ended = "quit",
                                  .has_icount = true,
                                  .icount = 426151549};
    assert_int_equal(trace_rr_segment(db, &s0), 0);
    struct trace_rr_segment s1 = {.node_id = n2,
                                  .segment = 1,
                                  .start_ns = t0 + 6 * FL_NS_PER_SEC,
                                  .end_ns = t0 + 9 * FL_NS_PER_SEC,
                                  .ended = "killed"};
    assert_int_equal(trace_rr_segment(db, &s1), 0);
    struct trace_rr_segment bad = s1;
    bad.node_id = 7;
    assert_int_equal(trace_rr_segment(db, &bad), -ENOENT);
    bad = s1;
    bad.ended = "";
    assert_int_equal(trace_rr_segment(db, &bad), -EINVAL);
    assert_int_equal(trace_rr_segment(NULL, &s1), -EINVAL);
    struct fl_error *err = NULL;
    assert_true(trace_db_finish(db, &err));

    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM rr_segments"), 2);
    char *v = sql_text(c, "SELECT node_id || '|' || start_ns || '|' || end_ns || '|' || ended ||"
                          " '|' || icount FROM rr_segments WHERE segment = 0");
    assert_string_equal(v, "1|-3000000000|5000000000|quit|426151549");
    free(v);
    assert_int_equal(sql_int(c, "SELECT icount IS NULL FROM rr_segments WHERE segment = 1"), 1);
    sqlite3_close(c);
}

/* Host I/O errors: a host_errors row with its parts and an "error" event
 * on the disk's node that `faultline trace --events` lists. */
static void test_host_errors(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n1 = trace_node_id(db, "n1");
    int64_t disk = trace_disk_id(db, n1, "data", 8 << 20);
    const int64_t t0 = 500 * FL_NS_PER_SEC;
    assert_int_equal(trace_db_set_epoch(db, t0), 0);
    struct trace_host_error he = {.t_ns = t0 + 5 * FL_NS_PER_SEC,
                                  .what = "disk",
                                  .disk_id = disk,
                                  .name = "data",
                                  .path = "/srv/run/data.img",
                                  .errnum = ENOSPC,
                                  .message = "destaging 262144 bytes at 1048576"};
    assert_int_equal(trace_host_error(db, &he), 1);
    struct trace_host_error bare = {.t_ns = t0 + 6 * FL_NS_PER_SEC, .what = "disk", .errnum = EIO};
    assert_int_equal(trace_host_error(db, &bare), 2);
    struct trace_host_error bad = he;
    bad.errnum = 0;
    assert_int_equal(trace_host_error(db, &bad), -EINVAL);
    bad = he;
    bad.what = "";
    assert_int_equal(trace_host_error(db, &bad), -EINVAL);
    bad = he;
    bad.disk_id = 9;
    assert_int_equal(trace_host_error(db, &bad), -ENOENT);
    bad = he;
    bad.node_id = 9;
    assert_int_equal(trace_host_error(db, &bad), -ENOENT);
    assert_int_equal(trace_host_error(NULL, &he), -EINVAL);
    struct fl_error *err = NULL;
    assert_true(trace_db_finish(db, &err));

    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM host_errors"), 2);
    assert_int_equal(sql_int(c, "SELECT t_ns FROM host_errors WHERE id = 1"), 5 * FL_NS_PER_SEC);
    assert_int_equal(sql_int(c, "SELECT node_id FROM host_errors WHERE id = 1"), n1);
    assert_int_equal(sql_int(c, "SELECT disk_id FROM host_errors WHERE id = 1"), disk);
    assert_int_equal(sql_int(c, "SELECT errnum FROM host_errors WHERE id = 1"), ENOSPC);
    char *v = sql_text(c, "SELECT what || '|' || name || '|' || path || '|' || errname || '|' ||"
                          " message FROM host_errors WHERE id = 1");
    assert_string_equal(v, "disk|data|/srv/run/data.img|ENOSPC|destaging 262144 bytes at 1048576");
    free(v);
    v = sql_text(c, "SELECT e.kind || '|' || e.node_id || '|' || e.t_ns || '|' || e.detail"
                    " FROM host_errors h JOIN events e ON e.id = h.event_id WHERE h.id = 1");
    assert_string_equal(v, "error|1|5000000000|host error on disk data (/srv/run/data.img): ENOSPC"
                           " (No space left on device): destaging 262144 bytes at 1048576");
    free(v);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM host_errors WHERE id = 2 AND node_id IS NULL"
                                " AND disk_id IS NULL AND name IS NULL AND path IS NULL"
                                " AND message IS NULL AND errname = 'EIO'"),
                     1);
    v = sql_text(c, "SELECT detail FROM events WHERE id = (SELECT event_id FROM host_errors"
                    " WHERE id = 2)");
    assert_string_equal(v, "host error on disk: EIO (Input/output error)");
    free(v);
    sqlite3_close(c);

    /* `faultline trace --events` shows them */
    db = trace_db_open_readonly(f->path, &err);
    assert_non_null(db);
    char *buf = NULL;
    size_t size = 0, rows = 0;
    FILE *out = open_memstream(&buf, &size);
    struct trace_query q = {.kind = TRACE_QUERY_EVENTS, .node = "n1"};
    assert_true(trace_query_print(db, &q, out, &rows, &err));
    fclose(out);
    assert_int_equal(rows, 2);
    assert_non_null(strstr(buf, "error  host error on disk data (/srv/run/data.img): ENOSPC"));
    free(buf);
    trace_db_close(db);
}

static void test_ios_and_crash(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    assert_int_equal(trace_db_set_epoch(db, 0), 0);
    int64_t n1 = trace_node_id(db, "n1");
    int64_t d = trace_disk_id(db, n1, "data", 1 << 30);
    struct trace_io w = {.disk_id = d,
                         .submit_ns = 100,
                         .complete_ns = 300,
                         .offset = 4096,
                         .length = 8192,
                         .op = TRACE_IO_WRITE};
    int64_t w1 = trace_io(db, &w);
    assert_int_equal(w1, 1);
    w.offset = 1ull << 33; /* above 32 bits */
    w.fua = 1;
    int64_t w2 = trace_io(db, &w);
    assert_int_equal(w2, 2);
    struct trace_io e = {.disk_id = d,
                         .submit_ns = 400,
                         .complete_ns = 900,
                         .op = TRACE_IO_READ,
                         .length = 512,
                         .fault = TRACE_IO_FAULT_ERROR,
                         .result = EIO};
    assert_int_equal(trace_io(db, &e), 3);
    struct trace_io pending = {.disk_id = d,
                               .submit_ns = 950,
                               .complete_ns = TRACE_NO_TIME,
                               .op = TRACE_IO_WRITE_ZEROES,
                               .length = 4096};
    assert_int_equal(trace_io(db, &pending), 4);
    struct trace_io bad = w;
    bad.op = TRACE_IO_OP_COUNT;
    assert_int_equal(trace_io(db, &bad), -EINVAL);
    bad = w;
    bad.result = -5;
    assert_int_equal(trace_io(db, &bad), -EINVAL);
    bad = w;
    bad.disk_id = 4;
    assert_int_equal(trace_io(db, &bad), -ENOENT);

    int64_t c1 = trace_crash(db, d, 1000, "lose-unflushed");
    assert_int_equal(c1, 1);
    assert_int_equal(trace_crash(db, 9, 1000, "x"), -ENOENT);
    assert_int_equal(trace_crash_write(db, c1, w1, TRACE_CRASH_TORN, 512), 0);
    assert_int_equal(trace_crash_write(db, c1, 4, TRACE_CRASH_LOST, 0), 0);
    assert_int_equal(trace_crash_write(db, c1, 77, TRACE_CRASH_LOST, 0), -ENOENT);
    assert_int_equal(trace_crash_write(db, 5, w1, TRACE_CRASH_LOST, 0), -ENOENT);
    assert_int_equal(trace_crash_write(db, c1, w1, TRACE_CRASH_OUTCOME_COUNT, 0), -EINVAL);
    trace_db_close(db);

    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM ios"), 4);
    assert_int_equal(sql_int(c, "SELECT offset FROM ios WHERE id = 2"), (int64_t)(1ull << 33));
    assert_int_equal(sql_int(c, "SELECT fua FROM ios WHERE id = 2"), 1);
    assert_int_equal(sql_int(c, "SELECT result FROM ios WHERE id = 3"), EIO);
    assert_int_equal(sql_int(c, "SELECT fault = 'error' AND op = 'read' FROM ios WHERE id = 3"), 1);
    assert_int_equal(sql_int(c, "SELECT complete_ns FROM ios WHERE id = 4"), INT64_MIN);
    assert_int_equal(sql_int(c, "SELECT op = 'write-zeroes' FROM ios WHERE id = 4"), 1);
    assert_int_equal(sql_int(c, "SELECT latency_ns FROM ios_named WHERE id = 1"), 200);
    assert_int_equal(sql_int(c, "SELECT kept_bytes FROM crash_writes WHERE io_id = 1"), 512);
    assert_int_equal(sql_int(c, "SELECT outcome = 'torn' FROM crash_writes WHERE io_id = 1"), 1);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM crash_writes WHERE outcome = 'lost'"), 1);
    assert_int_equal(sql_int(c, "SELECT t_ns FROM crashes"), 1000);
    sqlite3_close(c);
}

static void test_reopen_appends(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n1 = trace_node_id(db, "n1");
    trace_node_id(db, "n2");
    assert_int_equal(trace_event(db, 5, "note", n1, "first"), 1);
    assert_int_equal(trace_db_set_epoch(db, 0), 0);
    trace_db_close(db);

    db = open_db(f->path);
    assert_int_equal(trace_db_epoch(db), 0);
    assert_int_equal(trace_node_id(db, "n2"), 2);
    assert_int_equal(trace_node_id(db, "n3"), 3);
    assert_int_equal(trace_event(db, 6, "note", n1, "second"), 2);
    trace_db_close(db);
    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM nodes"), 3);
    assert_int_equal(sql_int(c, "SELECT t_ns FROM events WHERE id = 2"), 6);
    sqlite3_close(c);
}

static void test_version_mismatch_and_bad_paths(void **state)
{
    struct fixture *f = *state;
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(f->path, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    struct fl_error *err = NULL;
    assert_null(trace_db_open(f->path, &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "schema version 99"));
    assert_non_null(strstr(err->msg, "version 1"));
    fl_error_free(err);
    err = NULL;
    assert_null(trace_db_open_readonly(f->path, &err));
    assert_non_null(strstr(err->msg, "99"));
    fl_error_free(err);
    err = NULL;
    assert_null(trace_db_open("/nonexistent-dir/x/run.db", &err));
    assert_non_null(strstr(err->msg, "/nonexistent-dir/x/run.db"));
    fl_error_free(err);
    err = NULL;
    assert_null(trace_db_open_readonly("/nonexistent-run", &err));
    assert_non_null(strstr(err->msg, "not a run directory"));
    fl_error_free(err);
    err = NULL;
    char junk[128];
    snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
    assert_true(
        fl_write_file(junk, "this is not sqlite, just text of some length........", 52, NULL));
    assert_null(trace_db_open_readonly(junk, &err));
    assert_non_null(err);
    fl_error_free(err);
    trace_db_close(NULL);
}

static void test_batching_and_readonly(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    assert_int_equal(trace_db_set_batch(db, 0, FL_NS_PER_SEC), -EINVAL);
    assert_int_equal(trace_db_set_batch(db, 10, 1000), -EINVAL);
    assert_int_equal(trace_db_set_batch(db, 10, 3600 * FL_NS_PER_SEC), 0);
    int64_t n1 = trace_node_id(db, "n1");
    int64_t l = trace_link_id(db, 0, n1, n1);
    struct trace_frame fr = {.sent_ns = 1,
                             .delivered_ns = 2,
                             .link_id = l,
                             .pcap_index = -1,
                             .fate = TRACE_FATE_DELIVERED};
    for (int i = 0; i < 25; i++) {
        assert_int_equal(trace_frame(db, &fr), 0);
    }
    /* two full batches are queued; the partial third only goes with a
     * flush (the interval is an hour) */
    assert_int_equal(trace_db_flush(db), 0);
    struct trace_db_stats st;
    trace_db_get_stats(db, &st);
    assert_int_equal(st.records, 27);
    assert_int_equal(st.committed, 27);
    assert_true(st.batches >= 3);

    /* a reader sees committed rows while the writer is open */
    struct fl_error *err = NULL;
    struct trace_db *ro = trace_db_open_readonly(f->dir, &err);
    assert_non_null(ro);
    assert_int_equal(trace_node_id(ro, "x"), -EBADF);
    assert_int_equal(trace_frame(ro, &fr), -EBADF);
    trace_db_close(ro);
    /* the reader left the live run without indexes (building them would
     * hold the write lock); closing the writer creates them */
    sqlite3 *c = sql_open(f->path);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM sqlite_master WHERE name = 'frames_by_fate'"),
                     0);
    assert_int_equal(sql_int(c, "SELECT value FROM meta WHERE key = 'writer_pid'"), getpid());
    trace_db_close(db);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM sqlite_master WHERE name = 'frames_by_fate'"),
                     1);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM meta WHERE key = 'writer_pid'"), 0);
    sqlite3_close(c);
}

/* A writer killed with SIGKILL: the database opens and holds every
 * committed batch. */
static void test_sigkill(void **state)
{
    struct fixture *f = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        struct trace_db *db = trace_db_open(f->path, NULL);
        if (!db) {
            _exit(2);
        }
        trace_db_set_batch(db, 100, 3600 * FL_NS_PER_SEC);
        int64_t n1 = trace_node_id(db, "n1");
        int64_t l = trace_link_id(db, 0, n1, n1);
        struct trace_frame fr = {.sent_ns = 1,
                                 .delivered_ns = 2,
                                 .link_id = l,
                                 .pcap_index = -1,
                                 .fate = TRACE_FATE_DELIVERED};
        for (int i = 0; i < 1000; i++) {
            fr.hash = (uint32_t)i;
            trace_frame(db, &fr);
        }
        if (trace_db_flush(db) != 0) {
            _exit(3);
        }
        /* 50 more records stay in the staging batch: never committed */
        for (int i = 1000; i < 1050; i++) {
            fr.hash = (uint32_t)i;
            trace_frame(db, &fr);
        }
        if (write(pfd[1], "k", 1) != 1) {
            _exit(4);
        }
        for (;;) {
            pause();
        }
    }
    close(pfd[1]);
    char ch;
    assert_int_equal(read(pfd[0], &ch, 1), 1);
    close(pfd[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* the WAL is still there: the database was not closed */
    char wal[128];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), 0);
    struct fl_error *err = NULL;
    struct trace_db *ro = trace_db_open_readonly(f->path, &err);
    if (!ro) {
        fail_msg("%s", err->msg);
    }
    trace_db_close(ro);
    sqlite3 *c = sql_open(f->path);
    char *ok = sql_text(c, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM frames"), 1000);
    assert_int_equal(sql_int(c, "SELECT max(hash) FROM frames"), 999);
    assert_int_equal(sql_int(c, "SELECT count(*) FROM nodes"), 1);
    /* the reader created the missing indexes */
    assert_int_equal(sql_int(c, "SELECT count(*) FROM sqlite_master WHERE name = 'frames_by_fate'"),
                     1);
    sqlite3_close(c);
}

/* Run-clock times print with microseconds; a time that rounds to zero
 * has no minus sign. */
static void assert_fmt_time(int64_t ns, const char *want)
{
    struct fl_buf b = {0};
    trace_fmt_time(&b, ns);
    assert_string_equal(b.data, want);
    fl_buf_free(&b);
}

static void test_fmt_time(void **state)
{
    (void)state;
    assert_fmt_time(0, "0.000000s");
    assert_fmt_time(1500, "0.000001s");
    assert_fmt_time(-500, "0.000000s");
    assert_fmt_time(-1500, "-0.000001s");
    assert_fmt_time(-200 * FL_NS_PER_US, "-0.000200s");
    assert_fmt_time(12 * FL_NS_PER_SEC + 500 * FL_NS_PER_MS, "12.500000s");
    assert_fmt_time(-2 * FL_NS_PER_SEC - 5, "-2.000000s");
}

static void test_names_and_hash(void **state)
{
    assert_string_equal(trace_fate_name(TRACE_FATE_DROPPED), "dropped");
    assert_string_equal(trace_drop_reason_name(TRACE_DROP_PORT_QUEUE_FULL), "port-queue-full");
    assert_string_equal(trace_drop_reason_name(TRACE_DROP_COUNT), "invalid");
    assert_string_equal(trace_io_op_name(TRACE_IO_WRITE_ZEROES), "write-zeroes");
    assert_string_equal(trace_io_fault_name(TRACE_IO_FAULT_FULL), "full");
    assert_string_equal(trace_crash_outcome_name(TRACE_CRASH_TORN), "torn");
    for (int r = 0; r < TRACE_DROP_COUNT; r++) {
        assert_int_equal(trace_drop_reason_parse(trace_drop_reason_name(r)), r);
    }
    assert_int_equal(trace_fate_parse("delivered"), TRACE_FATE_DELIVERED);
    assert_int_equal(trace_fate_parse("lost"), -1);
    assert_int_equal(trace_drop_reason_parse(NULL), -1);
    /* known answers, from the reference definition in docs/run-database.md
     * (computed independently in Python) */
    assert_int_equal(trace_frame_hash("", 0), 0x6912b479u);
    assert_int_equal(trace_frame_hash("a", 1), 0xc166c8c1u);
    assert_int_equal(trace_frame_hash("foobar", 6), 0x05cde9f1u);
    unsigned char seq[100];
    for (int i = 0; i < 100; i++) {
        seq[i] = (unsigned char)i;
    }
    assert_int_equal(trace_frame_hash(seq, sizeof(seq)), 0x8679cd14u);
    /* one flipped bit anywhere changes it */
    for (int i = 0; i < 100; i++) {
        seq[i] ^= 0x10;
        assert_int_not_equal(trace_frame_hash(seq, sizeof(seq)), 0x8679cd14u);
        seq[i] ^= 0x10;
    }
    assert_int_not_equal(trace_frame_hash(seq, 99), trace_frame_hash(seq, 100));
}

/* Not a benchmark (bench/netback measures tracing under load); prints the
 * hot-path cost so regressions are visible in the test log. */
static void test_hot_path_cost(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = open_db(f->path);
    int64_t n1 = trace_node_id(db, "n1");
    int64_t l = trace_link_id(db, 0, n1, n1);
    struct trace_frame fr = {.sent_ns = 1,
                             .delivered_ns = 2,
                             .link_id = l,
                             .pcap_index = -1,
                             .size = 98,
                             .fate = TRACE_FATE_DELIVERED};
    const int n = 200000;
    int64_t t0 = fl_clock_mono_ns();
    for (int i = 0; i < n; i++) {
        fr.sent_ns = i;
        fr.delivered_ns = i + 1000;
        assert_int_equal(trace_frame(db, &fr), 0);
    }
    int64_t t1 = fl_clock_mono_ns();
    assert_int_equal(trace_db_flush(db), 0);
    int64_t t2 = fl_clock_mono_ns();
    struct trace_db_stats st;
    trace_db_get_stats(db, &st);
    printf("# trace_frame: %.0f ns/record on the caller; %d records committed in %.0f ms "
           "(%.0f records/s end to end); writers stalled %.1f ms\n",
           (double)(t1 - t0) / n, n, (double)(t2 - t0) / 1e6, n * 1e9 / (double)(t2 - t0),
           (double)st.stall_ns / 1e6);
    assert_int_equal(st.committed, (uint64_t)n + 2);
    trace_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_interning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames_and_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_events_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ios_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rr_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_mismatch_and_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching_and_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill, setup, teardown),
        cmocka_unit_test(test_names_and_hash),
        cmocka_unit_test(test_fmt_time),
        cmocka_unit_test_setup_teardown(test_hot_path_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
