/* trace's writers on a file system that fails: every failure is kept
 * (first error + count), logged once, and reported to the writer's owner
 * (trace_db_ok/trace_db_finish, trace_pcap_ok/trace_pcap_finish). */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "trace/trace.h"

/* Counts the log lines of room "trace" at error level. */
static int trace_errors;
static void count_sink(void *arg, enum fl_log_level level, const char *room, const char *line)
{
    (void)arg;
    (void)line;
    if (level == FL_LOG_ERROR && !strcmp(room, "trace")) {
        trace_errors++;
    }
}

struct fixture {
    char dir[64];
    bool mounted;
};

static int setup(void **state)
{
    struct fixture *f = fl_xcalloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/fl-trace-full-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    trace_errors = 0;
    fl_log_set_sink(count_sink, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fl_log_set_sink(NULL, NULL);
    if (f->mounted) {
        umount2(f->dir, MNT_DETACH);
    }
    fl_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A 256 KiB tmpfs on f->dir, in a mount namespace of this process (so a
 * crashed test leaves no mount behind); the test is skipped where that is
 * not allowed (not root, no CAP_SYS_ADMIN). */
static void mount_small_tmpfs(struct fixture *f)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", f->dir, "tmpfs", 0, "size=256k") != 0) {
        skip();
    }
    f->mounted = true;
}

static void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part)) {
        fail_msg("'%s' does not contain '%s'", s, part);
    }
}

static void test_db_on_full_fs(void **state)
{
    struct fixture *f = *state;
    mount_small_tmpfs(f);
    char *path = fl_xasprintf("%s/run.db", f->dir);
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open(path, &err);
    if (!db) {
        fail_msg("%s", err->msg);
    }
    assert_true(trace_db_ok(db, &err));
    assert_null(err);
    int64_t n1 = trace_node_id(db, "n1"), n2 = trace_node_id(db, "n2");
    int64_t l = trace_link_id(db, trace_network_id(db, "lan"), n1, n2);
    assert_true(l > 0);
    int first_refused = -1;
    for (int k = 0; k < 400000 && first_refused < 0; k++) {
        struct trace_frame fr = {.sent_ns = fl_clock_mono_ns(),
                                 .delivered_ns = TRACE_NO_TIME,
                                 .link_id = l,
                                 .pcap_index = k,
                                 .size = 1500,
                                 .hash = (uint32_t)k * 2654435761u,
                                 .fate = TRACE_FATE_DROPPED,
                                 .reason = TRACE_DROP_LOSS};
        int r = trace_frame(db, &fr);
        if (r < 0) {
            assert_int_equal(r, -EIO);
            first_refused = k;
        }
    }
    assert_int_equal(trace_db_flush(db), -ENOSPC);
    assert_false(trace_db_ok(db, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ENOSPC);
    assert_contains(err->msg, path);
    assert_contains(err->msg, "records not written");
    fl_error_free(err);
    err = NULL;
    /* sticky: later records are refused, and counted */
    assert_int_equal(trace_event(db, fl_clock_mono_ns(), "note", 0, "after"), -EIO);
    assert_false(trace_db_finish(db, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ENOSPC);
    fl_error_free(err);
    /* once, however many batches failed */
    assert_int_equal(trace_errors, 1);
    free(path);
}

static void test_db_finish_ok(void **state)
{
    struct fixture *f = *state;
    char *path = fl_xasprintf("%s/run.db", f->dir);
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open(path, &err);
    assert_non_null(db);
    assert_true(trace_node_id(db, "n1") > 0);
    assert_int_equal(trace_db_flush(db), 0);
    assert_true(trace_db_ok(db, &err));
    assert_true(trace_db_finish(db, &err));
    assert_null(err);
    assert_true(trace_db_finish(NULL, &err)); /* accepts NULL, like close */
    assert_int_equal(trace_errors, 0);
    free(path);
}

/* Writes 4 MiB of packets (16 writer buffers). */
static int write_packets(struct trace_pcap *p, int *refused)
{
    static uint8_t frame[1500];
    int first_error = 0;
    for (int k = 0; k < 2800; k++) {
        int r = trace_pcap_write(p, (int64_t)k * 1000, frame, sizeof(frame));
        if (r < 0) {
            (*refused)++;
            if (!first_error) {
                first_error = r;
            }
        }
    }
    return first_error;
}

static void test_pcap_on_dev_full(void **state)
{
    (void)state;
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create("/dev/full", &err);
    if (!p) {
        skip(); /* no /dev/full here */
    }
    assert_true(trace_pcap_ok(p, &err));
    int refused = 0;
    int r = write_packets(p, &refused);
    assert_true(r == 0 || r == -ENOSPC);
    assert_int_equal(trace_pcap_flush(p), -ENOSPC);
    assert_int_equal(trace_pcap_write(p, 1, "x", 1), -ENOSPC);
    assert_false(trace_pcap_ok(p, &err));
    assert_int_equal(err->code, ENOSPC);
    assert_contains(err->msg, "/dev/full");
    /* every packet not in the file is counted: here all of them */
    char *want = fl_xasprintf("%d packets not written", 2800 + 1);
    assert_contains(err->msg, want);
    free(want);
    fl_error_free(err);
    err = NULL;
    assert_false(trace_pcap_finish(p, &err));
    assert_int_equal(err->code, ENOSPC);
    fl_error_free(err);
    assert_int_equal(trace_errors, 1);
}

static void test_pcap_on_full_fs(void **state)
{
    struct fixture *f = *state;
    mount_small_tmpfs(f);
    char *path = fl_xasprintf("%s/n1-eth0.pcap", f->dir);
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create(path, &err);
    assert_non_null(p);
    int refused = 0;
    write_packets(p, &refused);
    assert_int_equal(trace_pcap_flush(p), -ENOSPC);
    assert_false(trace_pcap_ok(p, &err));
    assert_int_equal(err->code, ENOSPC);
    assert_contains(err->msg, path);
    fl_error_free(err);
    err = NULL;
    assert_false(trace_pcap_finish(p, &err));
    fl_error_free(err);
    assert_int_equal(trace_errors, 1);
    free(path);
}

static void test_pcap_finish_ok(void **state)
{
    struct fixture *f = *state;
    char *path = fl_xasprintf("%s/ok.pcap", f->dir);
    struct fl_error *err = NULL;
    struct trace_pcap *p = trace_pcap_create(path, &err);
    assert_non_null(p);
    int refused = 0;
    assert_int_equal(write_packets(p, &refused), 0);
    assert_int_equal(refused, 0);
    assert_true(trace_pcap_ok(p, &err));
    assert_true(trace_pcap_finish(p, &err));
    assert_null(err);
    assert_true(trace_pcap_finish(NULL, &err));
    assert_int_equal(trace_errors, 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_finish_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_finish_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_on_dev_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcap_on_full_fs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_on_full_fs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
