/* Unit tests for report.html generation (the browser test in
 * tests/integration/trace renders it): self-contained, the data is there,
 * text from guests cannot break out of the script element. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "core/core.h"
#include "tests/unit/trace/synth.h"
#include "trace/trace.h"

static char *make_dir(void)
{
    char *d = fl_xstrdup("/tmp/fl-trace-r-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static char *read_report(const char *dir)
{
    char *path = fl_xasprintf("%s/report.html", dir);
    struct fl_error *err = NULL;
    char *html = fl_read_file(path, NULL, &err);
    if (!html) {
        fail_msg("%s", err->msg);
    }
    free(path);
    return html;
}

static void test_synthetic_report(void **state)
{
    char *dir = make_dir();
    struct synth_counts n;
    assert_true(synth_run(dir, &n));
    struct fl_error *err = NULL;
    if (!trace_report_write(dir, &err)) {
        fail_msg("%s", err->msg);
    }
    char *html = read_report(dir);
    assert_true(!strncmp(html, "<!DOCTYPE html>", 15));
    assert_non_null(strstr(html, "<script id=\"fl-data\" type=\"application/json\">"));
    assert_non_null(strstr(html, "data-rendered=\"no\""));
    /* the embedded assets */
    assert_non_null(strstr(html, "--delivered:"));
    assert_non_null(strstr(html, "function spacetime()"));
    /* the data the pictures need */
    assert_non_null(strstr(html, "\"three-node-partition\""));
    assert_non_null(strstr(html, "\"lose-unflushed\""));
    assert_non_null(strstr(html, "\"partition\""));
    assert_non_null(strstr(html, "\"window_frames\":[["));
    assert_non_null(strstr(html, "\"frame_count\":1203"));
    /* self-contained: nothing is fetched */
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "src=\""));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "url(http"));
    /* guest text is escaped: the check's stderr said "<lost>" */
    assert_null(strstr(html, "<lost>"));
    assert_non_null(strstr(html, "\\u003clost\\u003e")); /* in the JSON */
    /* the no-script part: verdict and checks as plain HTML */
    assert_non_null(strstr(html, "<noscript>"));
    assert_non_null(strstr(html, "<td>data-durable</td><td>FAILED</td>"));
    free(html);
    /* regenerating replaces the file; no temporary left behind */
    assert_true(trace_report_write(dir, &err));
    char *tmp = fl_xasprintf("%s/report.html.tmp", dir);
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(tmp);
    fl_rm_rf(dir);
    free(dir);
}

static void test_script_breakout_escaped(void **state)
{
    char *dir = make_dir();
    char *db_path = fl_xasprintf("%s/run.db", dir);
    struct trace_db *db = trace_db_open(db_path, NULL);
    assert_non_null(db);
    int64_t n = trace_node_id(db, "n</script><script>alert(1)</script>");
    assert_true(n > 0);
    struct trace_run_info info = {.scenario_name = "x\"y<!--", .seed = 1};
    assert_int_equal(trace_run_begin(db, &info), 0);
    assert_true(trace_event(db, fl_clock_mono_ns(), "note", n, "a & b </script>") > 0);
    trace_db_close(db);
    struct fl_error *err = NULL;
    assert_true(trace_report_write(dir, &err));
    char *html = read_report(dir);
    /* exactly the two script elements of the template are closed */
    size_t closes = 0;
    for (const char *p = html; (p = strstr(p, "</script>")); p++) {
        closes++;
    }
    assert_int_equal(closes, 2);
    assert_null(strstr(html, "<!--"));
    free(html);
    fl_rm_rf(dir);
    free(dir);
    free(db_path);
}

/* Recorded segments (rr_segments) and the run directory reach the page,
 * which renders them and the replay command of a failed check; a
 * database written before rr_segments existed still gives a report. */
static void test_recorded_segments(void **state)
{
    char *dir = make_dir();
    char *db_path = fl_xasprintf("%s/run.db", dir);
    struct trace_db *db = trace_db_open(db_path, NULL);
    assert_non_null(db);
    int64_t t0 = fl_clock_mono_ns();
    assert_int_equal(trace_db_set_epoch(db, t0), 0);
    int64_t n1 = trace_node_id(db, "n1"), n2 = trace_node_id(db, "n2");
    assert_true(n1 > 0 && n2 > 0);
    struct trace_rr_segment s0 = {.node_id = n2,
                                  .segment = 0,
                                  .start_ns = t0 - FL_NS_PER_SEC,
                                  .end_ns = t0 + 5 * FL_NS_PER_SEC,
                                  .ended = "quit",
                                  .has_icount = true,
                                  .icount = 426151549};
    assert_int_equal(trace_rr_segment(db, &s0), 0);
    struct trace_check c = {.name = "n2-reaches-n1",
                            .node_id = n2,
                            .command = "ping -c 3 n1",
                            .exit_status = 1,
                            .passed = false,
                            .start_ns = t0 + 2 * FL_NS_PER_SEC,
                            .end_ns = t0 + 3 * FL_NS_PER_SEC};
    assert_int_equal(trace_check(db, &c), 0);
    struct fl_error *err = NULL;
    assert_true(trace_db_finish(db, &err));
    assert_true(trace_report_write(dir, &err));
    char *html = read_report(dir);
    char *want = fl_xasprintf(
        "\"rr_segments\":[[%lld,0,-1000000000,5000000000,\"quit\",426151549]]", (long long)n2);
    assert_non_null(strstr(html, want));
    free(want);
    want = fl_xasprintf("\"run_dir\":\"%s\"", dir);
    assert_non_null(strstr(html, want));
    free(want);
    assert_non_null(strstr(html, "function recordingSection()"));
    free(html);

    /* without the table (an older run.db) */
    sqlite3 *conn = NULL;
    assert_int_equal(sqlite3_open(db_path, &conn), SQLITE_OK);
    assert_int_equal(sqlite3_exec(conn, "DROP TABLE rr_segments", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(conn);
    assert_true(trace_report_write(dir, &err));
    html = read_report(dir);
    assert_non_null(strstr(html, "\"rr_segments\":[]"));
    free(html);
    fl_rm_rf(dir);
    free(dir);
    free(db_path);
}

static void test_empty_and_missing(void **state)
{
    char *dir = make_dir();
    char *db_path = fl_xasprintf("%s/run.db", dir);
    /* a database with nothing in it (a run that failed at once) */
    trace_db_close(trace_db_open(db_path, NULL));
    struct fl_error *err = NULL;
    assert_true(trace_report_write(dir, &err));
    char *html = read_report(dir);
    assert_non_null(strstr(html, "\"nodes\":[]"));
    free(html);
    /* no database */
    assert_int_equal(unlink(db_path), 0);
    assert_false(trace_report_write(dir, &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "run.db"));
    fl_error_free(err);
    err = NULL;
    /* unwritable output */
    trace_db_close(trace_db_open(db_path, NULL));
    assert_false(trace_report_write_to(db_path, "/nonexistent/dir/report.html", &err));
    assert_non_null(strstr(err->msg, "/nonexistent/dir/report.html"));
    fl_error_free(err);
    fl_rm_rf(dir);
    free(dir);
    free(db_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_report),
        cmocka_unit_test(test_script_breakout_escaped),
        cmocka_unit_test(test_recorded_segments),
        cmocka_unit_test(test_empty_and_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
