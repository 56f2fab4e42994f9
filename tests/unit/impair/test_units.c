/* impair/units.c: human values, their error messages and round trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

static void test_duration_parse(void **state)
{
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"0", 0},
        {"250us", 250000},
        {"10ms", 10000000},
        {"1.5s", 1500000000},
        {"2m", 120000000000},
        {"1h", 3600000000000},
        {"7ns", 7},
        {"0.5ms", 500000},
        {".5ms", 500000},
        {"0010ms", 10000000},
        {"1.0000000004s", 1000000000},
        {"1.0000000005s", 1000000001}, /* rounds to nearest */
        {"\xc2\xb5s", 0},              /* placeholder, replaced below */
        {"1000h", INT64_C(3600000000000000)},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(ok); i++) {
        if (ok[i].s[0] == '\xc2') {
            continue;
        }
        int64_t ns = -1;
        struct fl_error *err = NULL;
        if (!impair_parse_duration(ok[i].s, &ns, &err)) {
            fail_msg("'%s': %s", ok[i].s, err->msg);
        }
        assert_true(ns == ok[i].ns);
    }
    int64_t ns;
    assert_true(impair_parse_duration("3\xc2\xb5s", &ns, NULL));
    assert_int_equal(ns, 3000);

    struct fl_error *err = NULL;
    assert_false(impair_parse_duration("10 parsecs", &ns, &err));
    assert_string_equal(err->msg, "'10 parsecs' is not a duration: unknown unit ' parsecs'; "
                                  "expected a number followed by ns, us, ms, s, m or h (e.g. "
                                  "250us, 10ms, 1.5s)");
    fl_error_free(err);
    err = NULL;
    assert_false(impair_parse_duration("-5ms", &ns, &err));
    assert_error_contains(err, "'-5ms' is not a duration: durations cannot be negative");
    assert_false(impair_parse_duration("10", &ns, &err));
    assert_error_contains(err, "'10' is not a duration: the unit is missing");
    assert_false(impair_parse_duration("ms", &ns, &err));
    assert_error_contains(err, "'ms' is not a duration: expected a number");
    assert_false(impair_parse_duration("", &ns, &err));
    assert_error_contains(err, "is not a duration");
    assert_false(impair_parse_duration("10MS", &ns, &err));
    assert_error_contains(err, "unknown unit 'MS'");
    assert_false(impair_parse_duration("1001h", &ns, &err));
    assert_error_contains(err, "'1001h' is too long: durations are at most 1000h");
    assert_false(impair_parse_duration("1.2.3s", &ns, &err));
    assert_error_contains(err, "unknown unit '.3s'");
    assert_false(impair_parse_duration("123456789012345678901ns", &ns, &err));
    assert_error_contains(err, "is not a duration");
}

static void test_duration_format(void **state)
{
    char b[IMPAIR_FMT_LEN];
    assert_string_equal(impair_format_duration(0, b, sizeof b), "0");
    assert_string_equal(impair_format_duration(250000, b, sizeof b), "250us");
    assert_string_equal(impair_format_duration(1500000, b, sizeof b), "1.5ms");
    assert_string_equal(impair_format_duration(1500000000, b, sizeof b), "1.5s");
    assert_string_equal(impair_format_duration(90 * FL_NS_PER_SEC, b, sizeof b), "90s");
    assert_string_equal(impair_format_duration(120 * FL_NS_PER_SEC, b, sizeof b), "2m");
    assert_string_equal(impair_format_duration(7200 * FL_NS_PER_SEC, b, sizeof b), "2h");
    assert_string_equal(impair_format_duration(1000000001, b, sizeof b), "1.000000001s");
    assert_string_equal(impair_format_duration(-5 * FL_NS_PER_MS, b, sizeof b), "-5ms");
    assert_string_equal(impair_format_duration(INT64_MIN, b, sizeof b), "-9223372036.854775808s");

    /* round trip: parse(format(x)) == x */
    struct impair_rng rng;
    impair_rng_seed(&rng, 1, impair_stream_id("units:duration"));
    for (int i = 0; i < 200000; i++) {
        int64_t x;
        switch (i % 4) {
        case 0:
            x = (int64_t)impair_rng_below(&rng, 1000000);
            break;
        case 1:
            x = (int64_t)impair_rng_below(&rng, 10000) * FL_NS_PER_US;
            break;
        case 2:
            x = (int64_t)impair_rng_below(&rng, 3600) * 60 * FL_NS_PER_SEC;
            break;
        default:
            x = (int64_t)impair_rng_below(&rng, UINT64_C(3600000000000000) + 1);
            break;
        }
        int64_t back;
        impair_format_duration(x, b, sizeof b);
        if (!impair_parse_duration(b, &back, NULL) || back != x) {
            fail_msg("%lld -> '%s' -> %lld", (long long)x, b, (long long)back);
        }
    }
}

static void test_prob(void **state)
{
    impair_prob p;
    struct fl_error *err = NULL;
    assert_true(impair_parse_prob("0", &p, NULL));
    assert_int_equal(p, 0);
    assert_true(impair_parse_prob("0%", &p, NULL));
    assert_int_equal(p, 0);
    assert_true(impair_parse_prob("100%", &p, NULL));
    assert_true(p == IMPAIR_PROB_MAX);
    assert_true(impair_parse_prob("25%", &p, NULL));
    assert_true(p == 1073741824u); /* round(0.25 * (2^32 - 1)) */
    assert_true(impair_parse_prob("0.1%", &p, NULL));
    assert_true(p == 4294967u);

    assert_false(impair_parse_prob("150%", &p, &err));
    assert_string_equal(err->msg, "'150%' is not a probability (0%..100%)");
    fl_error_free(err);
    err = NULL;
    assert_false(impair_parse_prob("100.0001%", &p, &err));
    assert_error_contains(err, "is not a probability (0%..100%)");
    assert_false(impair_parse_prob("-1%", &p, &err));
    assert_error_contains(err, "'-1%' is not a probability");
    assert_false(impair_parse_prob("0.5", &p, &err));
    assert_error_contains(err, "write it as a percentage with '%' (e.g. 0.5%)");
    assert_false(impair_parse_prob("lots", &p, &err));
    assert_error_contains(err, "'lots' is not a probability: expected a percentage");
    assert_false(impair_parse_prob("5%%", &p, &err));
    assert_error_contains(err, "'5%%' is not a probability");

    char b[IMPAIR_FMT_LEN];
    assert_string_equal(impair_format_prob(0, b, sizeof b), "0%");
    assert_string_equal(impair_format_prob(IMPAIR_PROB_MAX, b, sizeof b), "100%");
    assert_string_equal(impair_format_prob(pct(25), b, sizeof b), "25%");
    assert_string_equal(impair_format_prob(pct(0.1), b, sizeof b), "0.1%");
    assert_string_equal(impair_format_prob(pct(33.3), b, sizeof b), "33.3%");

    /* every probability round-trips; sample widely plus the edges */
    struct impair_rng rng;
    impair_rng_seed(&rng, 2, impair_stream_id("units:prob"));
    for (uint64_t i = 0; i < 300000; i++) {
        impair_prob x = i < 1000   ? (impair_prob)i
                        : i < 2000 ? IMPAIR_PROB_MAX - (impair_prob)(i - 1000)
                                   : impair_rng_u32(&rng);
        impair_prob back;
        impair_format_prob(x, b, sizeof b);
        if (!impair_parse_prob(b, &back, NULL) || back != x) {
            fail_msg("%u -> '%s' -> %u", x, b, back);
        }
    }
}

static void test_rate(void **state)
{
    static const struct {
        const char *s;
        uint64_t bits;
    } ok[] = {
        {"100kbit", 100000},
        {"1.5gbit", 1500000000},
        {"10MBps", 80000000},
        {"1000bit", 1000},
        {"10mbps", 80000000},
        {"1kibit", 1024},
        {"2Mibit", 2097152},
        {"1tbit", 1000000000000},
        {"1bps", 8},
        {"1KiBps", 8192},
        {"100Mbit", 100000000},
        {"0.5kbit", 500},
        {"1GBps", 8000000000},
        {"1.5bit", 2},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(ok); i++) {
        uint64_t v = 0;
        struct fl_error *err = NULL;
        if (!impair_parse_rate(ok[i].s, &v, &err)) {
            fail_msg("'%s': %s", ok[i].s, err->msg);
        }
        if (v != ok[i].bits) {
            fail_msg("'%s' = %llu, expected %llu", ok[i].s, (unsigned long long)v,
                     (unsigned long long)ok[i].bits);
        }
    }
    uint64_t v;
    struct fl_error *err = NULL;
    assert_false(impair_parse_rate("100", &v, &err));
    assert_error_contains(err, "'100' is not a rate: the unit is missing");
    assert_false(impair_parse_rate("100mbits", &v, &err));
    assert_error_contains(err, "'100mbits' is not a rate: unknown unit 'mbits'");
    assert_false(impair_parse_rate("0kbit", &v, &err));
    assert_error_contains(err, "it must be at least 1bit");
    assert_false(impair_parse_rate("-1kbit", &v, &err));
    assert_error_contains(err, "is not a rate");
    assert_false(impair_parse_rate("99999999999tbit", &v, &err));
    assert_error_contains(err, "too large");

    char b[IMPAIR_FMT_LEN];
    assert_string_equal(impair_format_rate(100000000, b, sizeof b), "100mbit");
    assert_string_equal(impair_format_rate(1500000000, b, sizeof b), "1.5gbit");
    assert_string_equal(impair_format_rate(1234, b, sizeof b), "1.234kbit");
    assert_string_equal(impair_format_rate(999, b, sizeof b), "999bit");
    struct impair_rng rng;
    impair_rng_seed(&rng, 3, impair_stream_id("units:rate"));
    for (int i = 0; i < 100000; i++) {
        uint64_t x = 1 + impair_rng_below(&rng, i % 2 ? 100000 : UINT64_C(10000000000000));
        uint64_t back;
        impair_format_rate(x, b, sizeof b);
        if (!impair_parse_rate(b, &back, NULL) || back != x) {
            fail_msg("%llu -> '%s'", (unsigned long long)x, b);
        }
    }
}

static void test_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {
        {"1500", 1500},     {"64k", 65536},
        {"64KiB", 65536},   {"1MB", 1000000},
        {"1GiB", 1u << 30}, {"1.5k", 1536},
        {"10kB", 10000},    {"2m", 2u << 20},
        {"1500B", 1500},    {"1tib", UINT64_C(1) << 40},
        {"0", 0},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(ok); i++) {
        uint64_t v = 0;
        struct fl_error *err = NULL;
        if (!impair_parse_size(ok[i].s, &v, &err)) {
            fail_msg("'%s': %s", ok[i].s, err->msg);
        }
        assert_true(v == ok[i].bytes);
    }
    uint64_t v;
    struct fl_error *err = NULL;
    assert_false(impair_parse_size("1.3k", &v, &err));
    assert_error_contains(err, "'1.3k' is not a whole number of bytes");
    assert_false(impair_parse_size("12 apples", &v, &err));
    assert_error_contains(err, "'12 apples' is not a size: unknown unit ' apples'");
    assert_false(impair_parse_size("-1", &v, &err));
    assert_error_contains(err, "is not a size");

    char b[IMPAIR_FMT_LEN];
    assert_string_equal(impair_format_size(1500, b, sizeof b), "1500");
    assert_string_equal(impair_format_size(65536, b, sizeof b), "64KiB");
    assert_string_equal(impair_format_size(1000000, b, sizeof b), "1MB");
    assert_string_equal(impair_format_size(UINT64_C(1) << 30, b, sizeof b), "1GiB");
    assert_string_equal(impair_format_size(0, b, sizeof b), "0");
    struct impair_rng rng;
    impair_rng_seed(&rng, 4, impair_stream_id("units:size"));
    for (int i = 0; i < 100000; i++) {
        uint64_t x = impair_rng_below(&rng, 1u << 20) << (i % 3 ? 0 : 10);
        uint64_t back;
        impair_format_size(x, b, sizeof b);
        if (!impair_parse_size(b, &back, NULL) || back != x) {
            fail_msg("%llu -> '%s'", (unsigned long long)x, b);
        }
    }
}

static void test_errno(void **state)
{
    int e;
    struct fl_error *err = NULL;
    assert_true(impair_parse_errno("EIO", &e, NULL));
    assert_int_equal(e, EIO);
    assert_true(impair_parse_errno("enospc", &e, NULL));
    assert_int_equal(e, ENOSPC);
    assert_true(impair_parse_errno("5", &e, NULL));
    assert_int_equal(e, 5);
    assert_string_equal(impair_errno_name(ENOSPC), "ENOSPC");
    assert_null(impair_errno_name(4000));
    assert_false(impair_parse_errno("EWHATEVER", &e, &err));
    assert_error_contains(err, "'EWHATEVER' is not an errno: expected one of EIO, ENOSPC");
    assert_false(impair_parse_errno("0", &e, &err));
    assert_error_contains(err, "is not an errno");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse), cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_prob),           cmocka_unit_test(test_rate),
        cmocka_unit_test(test_size),           cmocka_unit_test(test_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
