/* Disk decisions: latency, errors over a byte range, read corruption,
 * the word grammar and runtime changes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

static struct impair_disk_params parse_ok(const char *words)
{
    char *copy = fl_xstrdup(words), *argv[64];
    int argc = 0;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
        argv[argc++] = t;
    }
    struct impair_disk_params p;
    struct fl_error *err = NULL;
    if (!impair_disk_params_parse(argc, argv, NULL, &p, &err)) {
        fail_msg("'%s': %s", words, err->msg);
    }
    free(copy);
    return p;
}

static struct fl_error *parse_err(const char *words)
{
    char *copy = fl_xstrdup(words), *argv[64];
    int argc = 0;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
        argv[argc++] = t;
    }
    struct impair_disk_params p;
    struct fl_error *err = NULL;
    if (impair_disk_params_parse(argc, argv, NULL, &p, &err)) {
        fail_msg("'%s' parsed but should not", words);
    }
    free(copy);
    return err;
}

static struct impair_disk *make(const char *words, uint64_t seed)
{
    struct impair_disk_params p = parse_ok(words);
    struct fl_error *err = NULL;
    struct impair_disk *disk = impair_disk_create(&p, seed, impair_stream_id("n1:vda"), &err);
    if (!disk) {
        fail_msg("%s", err->msg);
    }
    impair_disk_params_clear(&p);
    return disk;
}

static void test_latency(void **state)
{
    struct impair_disk *disk = make("read delay 2ms 500us distribution normal write delay 5ms", 1);
    const int n = 1000000;
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) {
        struct impair_io_decision d;
        assert_int_equal(impair_disk_decide(disk, i, IMPAIR_IO_READ, 0, 4096, &d), 0);
        double l = (double)(d.complete_ns - i);
        s += l;
        q += l * l;
        assert_int_equal(d.error, 0);
    }
    double mean = s / n, sd = sqrt(q / n - mean * mean);
    assert_true(fabs(mean - 2e6) < 0.02 * 500e3);
    assert_close(sd, 500e3, 0.02);
    struct impair_io_decision d;
    assert_int_equal(impair_disk_decide(disk, 7, IMPAIR_IO_WRITE, 0, 4096, &d), 0);
    assert_true(d.complete_ns == 7 + 5000000);
    assert_int_equal(impair_disk_decide(disk, 7, IMPAIR_IO_FLUSH, 0, 0, &d), 0);
    assert_true(d.complete_ns == 7);
    assert_int_equal(impair_disk_decide(disk, 7, (enum impair_io_op)17, 0, 0, &d), -EINVAL);
    impair_disk_destroy(disk);
    impair_disk_destroy(NULL);
}

static void test_errors_in_range(void **state)
{
    struct impair_disk *disk = make("write error 10% ENOSPC range 1MiB 2MiB", 2);
    const int n = 200000;
    uint64_t inside = 0, outside = 0, partial = 0;
    for (int i = 0; i < n; i++) {
        struct impair_io_decision d;
        impair_disk_decide(disk, i, IMPAIR_IO_WRITE, 1048576 + 4096 * (uint64_t)(i % 256), 4096,
                           &d);
        if (d.error) {
            assert_int_equal(d.error, -ENOSPC);
            inside++;
        }
        impair_disk_decide(disk, i, IMPAIR_IO_WRITE, 2097152, 4096, &d); /* just after */
        outside += d.error != 0;
        impair_disk_decide(disk, i, IMPAIR_IO_WRITE, 1048576 - 2048, 4096, &d); /* overlaps */
        partial += d.error != 0;
        impair_disk_decide(disk, i, IMPAIR_IO_READ, 1048576, 4096, &d); /* other op */
        assert_int_equal(d.error, 0);
    }
    assert_binomial(inside, n, 0.10);
    assert_binomial(partial, n, 0.10);
    assert_int_equal(outside, 0);
    struct impair_disk_stats st;
    impair_disk_get_stats(disk, &st);
    assert_true(st.errors[IMPAIR_IO_WRITE] == inside + partial);
    assert_true(st.decided[IMPAIR_IO_WRITE] == 3 * (uint64_t)n);
    impair_disk_destroy(disk);

    /* "all": every op, EIO by default; a flush ignores the range */
    disk = make("all error 100% range 0 4096", 3);
    struct impair_io_decision d;
    for (int op = 0; op < IMPAIR_IO__COUNT; op++) {
        uint64_t len = op == IMPAIR_IO_FLUSH ? 0 : 512;
        impair_disk_decide(disk, 0, (enum impair_io_op)op, 0, len, &d);
        assert_int_equal(d.error, -EIO);
        impair_disk_decide(disk, 0, (enum impair_io_op)op, op == IMPAIR_IO_FLUSH ? 0 : 8192, len,
                           &d);
        assert_int_equal(d.error, op == IMPAIR_IO_FLUSH ? -EIO : 0);
    }
    impair_disk_destroy(disk);
}

static void test_read_corruption(void **state)
{
    struct impair_disk *disk = make("read corrupt 5% error 1%", 4);
    const int n = 200000;
    uint64_t corrupted = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        struct impair_io_decision d;
        impair_disk_decide(disk, i, IMPAIR_IO_READ, 0, 65536, &d);
        if (d.error) {
            errors++;
            assert_false(d.corrupted); /* a failed read returns no data */
        }
        if (d.corrupted) {
            corrupted++;
            assert_true(d.corrupt_offset < 65536);
            assert_int_equal(__builtin_popcount(d.corrupt_mask), 1);
        }
    }
    assert_binomial(errors, n, 0.01);
    assert_binomial(corrupted, n - errors, 0.05);
    struct impair_io_decision d;
    impair_disk_decide(disk, 0, IMPAIR_IO_READ, 0, 0, &d);
    assert_false(d.corrupted);
    impair_disk_destroy(disk);
}

static void test_words(void **state)
{
    static const struct {
        const char *in, *canonical;
    } cases[] = {
        {"", ""},
        {"read delay 2ms", "read delay 2ms"},
        {"delay 1ms", "read delay 1ms write delay 1ms flush delay 1ms trim delay 1ms "
                      "write-zeroes delay 1ms"},
        {"write delay 5ms 1ms distribution pareto error 1% ENOSPC range 0 1GiB",
         "write delay 5ms 1ms distribution pareto error 1% ENOSPC range 0 1GiB"},
        {"read corrupt 0.01% flush delay 20ms error 2%",
         "read corrupt 0.01% flush delay 20ms error 2% EIO"},
        {"write-zeroes error 50% erofs", "write-zeroes error 50% EROFS"},
        {"trim error 5% 28 range 0 1MB", "trim error 5% ENOSPC range 0 1MB"},
        {"read error 5% 4000", "read error 5% 4000"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct impair_disk_params p = parse_ok(cases[i].in), q;
        struct fl_buf b = {0};
        impair_disk_params_format(&p, &b);
        assert_string_equal(b.data, cases[i].canonical);
        q = parse_ok(b.data);
        assert_true(impair_disk_params_equal(&p, &q));
        struct impair_disk_params c;
        impair_disk_params_copy(&c, &p);
        assert_true(impair_disk_params_equal(&c, &p));
        impair_disk_params_clear(&c);
        fl_buf_free(&b);
        impair_disk_params_clear(&p);
        impair_disk_params_clear(&q);
    }

    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"write corrupt 1%", "write corrupt: only reads return data to corrupt"},
        {"flush error 1% range 0 1MiB", "flush error: a flush has no extent, so it takes no range"},
        {"read error 1% range 1MiB 1MiB", "read error: range end 1048576 is not after its start"},
        {"read error 1% range 0", "read error: range needs START and END"},
        {"read error 1% EWHAT", "read error: 'EWHAT' is not an errno"},
        {"read error 1% 5000", "read error: '5000' is not an errno"},
        {"read error", "read error: missing PERCENT"},
        {"read error 120%", "read error: '120%' is not a probability (0%..100%)"},
        {"write delay -1ms", "write delay: '-1ms' is not a duration"},
        {"read delay 1ms distribution normal", "read delay: distribution normal needs a jitter"},
        {"raed delay 1ms", "'raed' is not a disk parameter; did you mean 'read'?"},
        {"latency 1ms", "'latency' is not a disk parameter: expected an op"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        struct fl_error *err = parse_err(bad[i].in);
        if (!strstr(err->msg, bad[i].msg)) {
            fail_msg("'%s': got '%s', want '%s'", bad[i].in, err->msg, bad[i].msg);
        }
        fl_error_free(err);
    }
    struct impair_disk_params p = {0};
    struct fl_error *err = NULL;
    p.op[IMPAIR_IO_READ].range_end = 10;
    assert_false(impair_disk_params_validate(&p, &err));
    assert_error_contains(err, "read error: a range needs an error probability");
    memset(&p, 0, sizeof p);
    p.op[IMPAIR_IO_TRIM].error_errno = -5;
    assert_false(impair_disk_params_validate(&p, &err));
    assert_error_contains(err, "trim error: errno -5 is out of range");

    enum impair_io_op op;
    assert_true(impair_io_op_from_name("write-zeroes", &op) && op == IMPAIR_IO_WRITE_ZEROES);
    assert_false(impair_io_op_from_name("discard", &op));
    assert_string_equal(impair_io_op_name(IMPAIR_IO_FLUSH), "flush");
    assert_string_equal(impair_io_op_name((enum impair_io_op)77), "?");
}

static void test_set_params_and_determinism(void **state)
{
    struct impair_disk *a = make("read delay 1ms 1ms error 5%", 5);
    struct impair_disk *b = make("read delay 1ms 1ms error 5%", 5);
    struct impair_disk_params bad = parse_ok("read delay 1ms"), good = parse_ok("read delay 3ms");
    bad.op[IMPAIR_IO_FLUSH].range_end = 5;
    bad.op[IMPAIR_IO_FLUSH].error_p = 1;
    struct fl_error *err = NULL;
    assert_false(impair_disk_set_params(a, &bad, &err));
    assert_error_contains(err, "flush error: a flush has no extent");
    assert_null(impair_disk_create(&bad, 1, 1, &err));
    assert_error_contains(err, "flush error");
    for (int i = 0; i < 10000; i++) {
        struct impair_io_decision x, y;
        impair_disk_decide(a, i, IMPAIR_IO_READ, 0, 512, &x);
        impair_disk_decide(b, i, IMPAIR_IO_READ, 0, 512, &y);
        assert_memory_equal(&x, &y, sizeof x);
    }
    assert_true(impair_disk_set_params(a, &good, NULL));
    assert_true(impair_disk_params_equal(impair_disk_params(a), &good));
    struct impair_io_decision x;
    impair_disk_decide(a, 0, IMPAIR_IO_READ, 0, 512, &x);
    assert_true(x.complete_ns == 3000000);
    impair_disk_params_clear(&bad);
    impair_disk_params_clear(&good);
    impair_disk_destroy(a);
    impair_disk_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_errors_in_range),
        cmocka_unit_test(test_read_corruption),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_set_params_and_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
