/* Unit tests for `faultline trace` queries and the merged pcap, on the
 * synthetic run of synth.h (counts known by construction). */
#include <errno.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "tests/unit/trace/synth.h"
#include "trace/trace.h"

struct fixture {
    char dir[64];
    struct synth_counts n;
    struct trace_db *db;
};

static int setup(void **state)
{
    struct fixture *f = fl_xcalloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/fl-trace-q-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_true(synth_run(f->dir, &f->n));
    struct fl_error *err = NULL;
    f->db = trace_db_open_readonly(f->dir, &err);
    assert_non_null(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    trace_db_close(f->db);
    fl_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Runs q; returns the output (caller frees) and the row count. */
static char *run_query(struct trace_db *db, const struct trace_query *q, size_t *rows)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    struct fl_error *err = NULL;
    bool ok = trace_query_print(db, q, out, rows, &err);
    fclose(out);
    if (!ok) {
        fail_msg("query failed: %s", err->msg);
    }
    return buf;
}

static size_t count_lines(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = fl_xstrndup(p, len);
        if (!needle || strstr(line, needle)) {
            n++;
        }
        free(line);
        p += len + (nl ? 1 : 0);
    }
    return n;
}

static size_t rows_of(struct trace_db *db, struct trace_query q)
{
    size_t rows = 0;
    q.json = true;
    char *out = run_query(db, &q, &rows);
    assert_int_equal(count_lines(out, NULL), rows);
    free(out);
    return rows;
}

static void test_frame_filters(void **state)
{
    struct fixture *f = *state;
    struct trace_db *db = f->db;
    assert_int_equal(rows_of(db, (struct trace_query){0}), f->n.frames);
    assert_int_equal(rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_DROPPED}),
                     f->n.dropped_partition + f->n.dropped_loss);
    assert_int_equal(rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_DELIVERED}),
                     f->n.frames - f->n.dropped_partition - f->n.dropped_loss);
    assert_int_equal(rows_of(db, (struct trace_query){.reason = TRACE_DROP_PARTITION}),
                     f->n.dropped_partition);
    assert_int_equal(rows_of(db, (struct trace_query){.reason = TRACE_DROP_LOSS}),
                     f->n.dropped_loss);
    assert_int_equal(rows_of(db, (struct trace_query){.reason = TRACE_DROP_MTU}), 0);
    assert_int_equal(rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_DUPLICATED}),
                     f->n.duplicated);
    assert_int_equal(rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_CORRUPTED}),
                     f->n.corrupted);
    assert_int_equal(rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_REORDERED}),
                     f->n.reordered);
    assert_int_equal(rows_of(db, (struct trace_query){.delayed_beyond_ns = 5 * FL_NS_PER_MS}),
                     f->n.delayed_beyond_5ms);
    assert_int_equal(rows_of(db, (struct trace_query){.from_node = "n1", .to_node = "n2"}),
                     f->n.n1_to_n2);
    assert_int_equal(
        rows_of(db, (struct trace_query){.to_node = "n3", .fate_flags = TRACE_Q_DROPPED}),
        f->n.to_n3_dropped);
    /* the partition window: everything to/from n3 in [5s, 10s) is dropped;
     * 50 steps x 4 directed links */
    assert_int_equal(rows_of(db, (struct trace_query){.node = "n3",
                                                      .has_since = true,
                                                      .since_ns = 5 * FL_NS_PER_SEC,
                                                      .has_until = true,
                                                      .until_ns = 10 * FL_NS_PER_SEC}),
                     200);
    assert_int_equal(rows_of(db, (struct trace_query){.node = "n3",
                                                      .fate_flags = TRACE_Q_DELIVERED,
                                                      .has_since = true,
                                                      .since_ns = 5 * FL_NS_PER_SEC,
                                                      .has_until = true,
                                                      .until_ns = 10 * FL_NS_PER_SEC}),
                     0);
    assert_int_equal(rows_of(db, (struct trace_query){.limit = 7}), 7);
    /* a combination that cannot hold */
    assert_int_equal(
        rows_of(db, (struct trace_query){.fate_flags = TRACE_Q_DROPPED | TRACE_Q_CORRUPTED}), 0);
}

static void test_frame_output(void **state)
{
    struct fixture *f = *state;
    size_t rows;
    struct trace_query q = {.fate_flags = TRACE_Q_CORRUPTED, .json = true};
    char *out = run_query(f->db, &q, &rows);
    assert_int_equal(rows, 1);
    assert_non_null(strstr(out, "\"from\":\"n3\""));
    assert_non_null(strstr(out, "\"to\":\"n1\""));
    assert_non_null(strstr(out, "\"from_nic\":\"eth0\""));
    assert_non_null(strstr(out, "\"network\":\"lan\""));
    assert_non_null(strstr(out, "\"corrupt_offset\":40"));
    assert_non_null(strstr(out, "\"corrupt_mask\":4"));
    assert_non_null(strstr(out, "\"sent_ns\":15006000000"));
    free(out);

    q = (struct trace_query){.reason = TRACE_DROP_PARTITION, .limit = 2};
    out = run_query(f->db, &q, &rows);
    assert_int_equal(rows, 2);
    assert_int_equal(count_lines(out, NULL), 3); /* header + rows */
    assert_non_null(strstr(out, "FATE"));
    assert_non_null(strstr(out, "dropped:partition"));
    assert_non_null(strstr(out, "5.002000s"));
    free(out);

    /* more rows than the table sizes its columns on: header once, every
     * row printed */
    q = (struct trace_query){0};
    out = run_query(f->db, &q, &rows);
    assert_int_equal(rows, f->n.frames);
    assert_true(rows > 1000);
    assert_int_equal(count_lines(out, NULL), rows + 1);
    assert_int_equal(count_lines(out, "FATE"), 1);
    assert_int_equal(count_lines(out, "dropped:partition"), f->n.dropped_partition);
    free(out);
}

static void test_ios_lost_events(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_IOS}), f->n.ios);
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_IOS, .node = "n2"}),
                     0);
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_IOS,
                                                         .disk = "data",
                                                         .has_since = true,
                                                         .since_ns = 13 * FL_NS_PER_SEC}),
                     5);
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_LOST}),
                     f->n.lost_writes);
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_LOST,
                                                         .has_until = true,
                                                         .until_ns = 12 * FL_NS_PER_SEC}),
                     0);
    assert_int_equal(rows_of(f->db, (struct trace_query){.kind = TRACE_QUERY_EVENTS}), f->n.events);

    size_t rows;
    /* tables: no line ends in a blank (the heal event has no detail) */
    struct trace_query tq = {.kind = TRACE_QUERY_EVENTS};
    char *table = run_query(f->db, &tq, &rows);
    assert_non_null(strstr(table, " heal\n"));
    assert_null(strstr(table, " \n"));
    free(table);

    struct trace_query q = {.kind = TRACE_QUERY_LOST};
    char *out = run_query(f->db, &q, &rows);
    assert_int_equal(count_lines(out, " lost "), f->n.lost_writes - 1);
    assert_int_equal(count_lines(out, " torn "), 1);
    assert_non_null(strstr(out, "lose-unflushed"));
    assert_non_null(strstr(out, "12.500000s"));
    free(out);

    q = (struct trace_query){.kind = TRACE_QUERY_EVENTS, .node = "n2", .json = true};
    out = run_query(f->db, &q, &rows);
    /* n2's boot and ready, plus the run-wide partition and heal */
    assert_int_equal(rows, 4);
    assert_non_null(strstr(out, "\"t_ns\":-1900000000")); /* boot, shifted by the epoch */
    assert_non_null(strstr(out, "\"end_ns\":10000000000"));
    free(out);

    q = (struct trace_query){.kind = TRACE_QUERY_IOS, .json = true, .limit = 100};
    out = run_query(f->db, &q, &rows);
    assert_non_null(strstr(out, "\"fault\":\"error\",\"fua\":false"));
    assert_non_null(strstr(out, "\"result\":5"));
    free(out);
}

static void test_links(void **state)
{
    struct fixture *f = *state;
    size_t rows;
    struct trace_query q = {.kind = TRACE_QUERY_LINKS, .json = true};
    char *out = run_query(f->db, &q, &rows);
    assert_int_equal(rows, 6); /* every directed link of 3 nodes */
    /* sorted by name: n1->n2 first, with its losses and the 11 ms delay
     * it has from 8 s on */
    const char *first = "{\"link\":\"n1->n2\",\"network\":\"lan\",\"sent\":200,";
    assert_true(!strncmp(out, first, strlen(first)));
    char want[128];
    snprintf(want, sizeof(want), "\"dropped\":%zu,", f->n.dropped_loss);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"dropped_by\":{\"loss\":20}"));
    assert_non_null(strstr(out, "\"dropped_by\":{\"partition\":50}"));
    assert_non_null(strstr(out, "\"duplicated\":3"));
    free(out);
    /* frame filters apply: inside the partition nothing reaches n3 */
    q = (struct trace_query){.kind = TRACE_QUERY_LINKS,
                             .to_node = "n3",
                             .has_since = true,
                             .since_ns = 5 * FL_NS_PER_SEC,
                             .has_until = true,
                             .until_ns = 10 * FL_NS_PER_SEC};
    out = run_query(f->db, &q, &rows);
    assert_int_equal(rows, 2);
    assert_int_equal(count_lines(out, "50 (partition:50)"), 2);
    assert_non_null(strstr(out, "P99"));
    free(out);
}

static void test_bad_names(void **state)
{
    struct fixture *f = *state;
    struct fl_error *err = NULL;
    FILE *out = fopen("/dev/null", "w");
    struct trace_query q = {.from_node = "n9"};
    assert_false(trace_query_print(f->db, &q, out, NULL, &err));
    assert_non_null(strstr(err->msg, "node 'n9' is not in this run"));
    assert_non_null(strstr(err->msg, "'n1', 'n2', 'n3'"));
    assert_int_equal(err->code, ENOENT);
    fl_error_free(err);
    err = NULL;
    q = (struct trace_query){.kind = TRACE_QUERY_IOS, .disk = "root"};
    assert_false(trace_query_print(f->db, &q, out, NULL, &err));
    assert_non_null(strstr(err->msg, "disk 'root'"));
    assert_non_null(strstr(err->msg, "'data'"));
    fl_error_free(err);
    fclose(out);
}

static size_t pcap_count(const char *path, uint32_t *first_hash, int *precision)
{
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!p) {
        fail_msg("%s", ebuf);
    }
    *precision = pcap_get_tstamp_precision(p);
    assert_int_equal(pcap_datalink(p), DLT_EN10MB);
    struct pcap_pkthdr *h;
    const u_char *data;
    size_t n = 0;
    while (pcap_next_ex(p, &h, &data) == 1) {
        if (n == 0 && first_hash) {
            *first_hash = trace_frame_hash(data, h->caplen);
        }
        n++;
    }
    pcap_close(p);
    return n;
}

static void test_pcap_merge(void **state)
{
    struct fixture *f = *state;
    char *out = fl_xasprintf("%s/merged.pcap", f->dir);
    size_t written, missing;
    struct fl_error *err = NULL;
    struct trace_query q = {0};
    assert_true(trace_pcap_merge(f->db, f->dir, &q, out, &written, &missing, &err));
    /* every send once (duplicate copies are one packet) */
    assert_int_equal(written, f->n.sends);
    assert_int_equal(missing, 0);
    int prec;
    assert_int_equal(pcap_count(out, NULL, &prec), f->n.sends);
    assert_int_equal(prec, PCAP_TSTAMP_PRECISION_NANO);

    q = (struct trace_query){.reason = TRACE_DROP_LOSS};
    assert_true(trace_pcap_merge(f->db, f->dir, &q, out, &written, &missing, &err));
    assert_int_equal(written, f->n.dropped_loss);
    assert_int_equal(missing, 0);
    uint32_t h = 0;
    assert_int_equal(pcap_count(out, &h, &prec), f->n.dropped_loss);
    /* the first lost frame's bytes are the ones the frame record names */
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    q.json = true;
    q.limit = 1;
    assert_true(trace_query_print(f->db, &q, mem, NULL, &err));
    fclose(mem);
    char want[32];
    snprintf(want, sizeof(want), "\"hash\":\"%08x\"", h);
    assert_non_null(strstr(buf, want));
    free(buf);

    /* per-NIC pcaps missing: frames are counted as missing, not an error */
    char *p1 = trace_pcap_path(f->dir, "n1", "eth0");
    assert_int_equal(unlink(p1), 0);
    q = (struct trace_query){.from_node = "n1", .to_node = "n2"};
    assert_true(trace_pcap_merge(f->db, f->dir, &q, out, &written, &missing, &err));
    assert_int_equal(written, 0);
    assert_int_equal(missing, f->n.n1_to_n2);
    free(p1);

    /* unwritable output */
    assert_false(
        trace_pcap_merge(f->db, f->dir, &q, "/nonexistent/dir/x.pcap", &written, &missing, &err));
    assert_non_null(strstr(err->msg, "/nonexistent/dir/x.pcap"));
    fl_error_free(err);
    free(out);
}

static void test_pcap_writer(void **state)
{
    struct fixture *f = *state;
    char *path = fl_xasprintf("%s/w.pcap", f->dir);
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create(path, &err);
    assert_non_null(p);
    uint8_t frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54};
    assert_int_equal(trace_pcap_write(p, 1700000000123456789LL, frame, sizeof(frame)), 0);
    assert_int_equal(trace_pcap_write(p, -1, frame, sizeof(frame)), -EINVAL);
    assert_int_equal(trace_pcap_write(p, 0, NULL, 10), -EINVAL);
    assert_int_equal(trace_pcap_write(p, 0, frame, 300000), -EINVAL);
    /* buffered until flushed: a reader sees it after trace_pcap_flush */
    assert_int_equal(trace_pcap_flush(p), 0);
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *r = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    assert_non_null(r);
    struct pcap_pkthdr *h;
    const u_char *data;
    assert_int_equal(pcap_next_ex(r, &h, &data), 1);
    assert_int_equal(h->caplen, 60);
    assert_int_equal(h->ts.tv_sec, 1700000000);
    assert_int_equal(h->ts.tv_usec, 123456789); /* nanoseconds */
    pcap_close(r);
    trace_pcap_destroy(p);
    trace_pcap_destroy(NULL);
    assert_int_equal(trace_pcap_flush(NULL), -EINVAL);
    assert_null(trace_pcap_create("/nonexistent/dir/x.pcap", &err));
    assert_non_null(strstr(err->msg, "/nonexistent/dir/x.pcap"));
    fl_error_free(err);
    char *pp = trace_pcap_path("/runs/r1", "n1", "eth0");
    assert_string_equal(pp, "/runs/r1/pcap/n1-eth0.pcap");
    free(pp);
    free(path);
}

/* Many packets (the writer thread gets many full buffers, and one packet
 * larger than a buffer): every byte and timestamp arrives in order. */
static void test_pcap_writer_many(void **state)
{
    struct fixture *f = *state;
    char *path = fl_xasprintf("%s/many.pcap", f->dir);
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create(path, &err);
    assert_non_null(p);
    enum { N = 3000, BIG_AT = 1700, BIG = 262144 };
    uint8_t *frame = fl_xmalloc(BIG);
    for (uint32_t i = 0; i < N; i++) {
        size_t size = i == BIG_AT ? BIG : 14 + (i * 7919) % 1501;
        for (size_t k = 0; k < size; k++) {
            frame[k] = (uint8_t)(i + k);
        }
        assert_int_equal(trace_pcap_write(p, 1000000000LL * i + i, frame, size), 0);
    }
    assert_int_equal(trace_pcap_flush(p), 0);
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *r = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    assert_non_null(r);
    assert_int_equal(pcap_datalink(r), DLT_EN10MB);
    struct pcap_pkthdr *h;
    const u_char *data;
    uint32_t n = 0;
    while (pcap_next_ex(r, &h, &data) == 1) {
        size_t size = n == BIG_AT ? BIG : 14 + (n * 7919) % 1501;
        assert_int_equal(h->caplen, size);
        assert_int_equal(h->len, size);
        assert_int_equal(h->ts.tv_sec, n);
        assert_int_equal(h->ts.tv_usec, n); /* nanoseconds */
        for (size_t k = 0; k < size; k++) {
            if (data[k] != (uint8_t)(n + k)) {
                fail_msg("packet %u byte %zu: %u, expected %u", n, k, data[k], (uint8_t)(n + k));
            }
        }
        n++;
    }
    assert_int_equal(n, N);
    pcap_close(r);
    /* still usable after a flush */
    assert_int_equal(trace_pcap_write(p, 5, frame, 60), 0);
    trace_pcap_destroy(p);
    r = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    assert_non_null(r);
    n = 0;
    while (pcap_next_ex(r, &h, &data) == 1) {
        n++;
    }
    assert_int_equal(n, N + 1);
    pcap_close(r);
    free(frame);
    free(path);
}

/* A failing file (a full disk): the writer thread's error reaches flush
 * and every later write. */
static void test_pcap_writer_error(void **state)
{
    if (access("/dev/full", W_OK) != 0) {
        skip();
    }
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create("/dev/full", &err);
    assert_non_null(p);
    uint8_t frame[100] = {0};
    assert_int_equal(trace_pcap_write(p, 1, frame, sizeof(frame)), 0); /* buffered */
    assert_int_equal(trace_pcap_flush(p), -ENOSPC);
    int r = 0;
    for (int i = 0; i < 10000 && r == 0; i++) { /* the next buffer handover reports it */
        r = trace_pcap_write(p, 1, frame, sizeof(frame));
    }
    assert_int_equal(r, -ENOSPC);
    assert_int_equal(trace_pcap_flush(p), -ENOSPC);
    trace_pcap_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_frame_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ios_lost_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_writer_many, setup, teardown),
        cmocka_unit_test(test_pcap_writer_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
