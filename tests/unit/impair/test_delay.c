/* Delay distributions: mean and standard deviation of 10^6 draws against
 * the configured values, correlation, user tables, clamping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

#define N 1000000

/* Delays (deliver - now) of n frames through a link built from words. */
static int64_t *delays(const char *words, const struct impair_parse_opts *opts, int n,
                       uint64_t seed)
{
    struct impair_link_params p;
    struct fl_error *err = NULL;
    if (!impair_link_params_parse_string(words, opts, &p, &err)) {
        fail_msg("'%s': %s", words, err->msg);
    }
    struct impair_link *link = impair_link_create(&p, seed, impair_stream_id("test:delay"), &err);
    assert_non_null(link);
    int64_t *out = fl_xmalloc((size_t)n * sizeof *out);
    for (int i = 0; i < n; i++) {
        struct impair_decision d;
        int64_t now = (int64_t)i * 1000;
        assert_int_equal(impair_link_decide(link, now, 100, &d), 0);
        assert_int_equal(d.n_deliveries, 1);
        out[i] = d.deliveries[0].time_ns - now;
        assert_true(out[i] >= 0);
    }
    impair_link_destroy(link);
    impair_link_params_clear(&p);
    return out;
}

static void stats(const int64_t *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) {
        s += (double)v[i];
    }
    *mean = s / n;
    for (int i = 0; i < n; i++) {
        q += ((double)v[i] - *mean) * ((double)v[i] - *mean);
    }
    *sd = sqrt(q / n);
}

/* Pearson correlation of successive values. */
static double lag1(const int64_t *v, int n)
{
    double m, sd;
    stats(v, n, &m, &sd);
    double c = 0;
    for (int i = 1; i < n; i++) {
        c += ((double)v[i] - m) * ((double)v[i - 1] - m);
    }
    return c / (n - 1) / (sd * sd);
}

static void check_moments(const char *words, double latency, double want_sd, uint64_t seed)
{
    int64_t *v = delays(words, NULL, N, seed);
    double mean, sd;
    stats(v, N, &mean, &sd);
    print_message("%-45s mean %.1f (want %.0f) sd %.1f (want %.1f)\n", words, mean, latency, sd,
                  want_sd);
    /* "within 2%": the mean within 2% of the configured spread around the
     * latency (stricter than 2% of the latency), the sd within 2%. */
    assert_true(fabs(mean - latency) <= 0.02 * want_sd);
    assert_close(sd, want_sd, 0.02);
    free(v);
}

static void test_distribution_moments(void **state)
{
    const double lat = 100e6, jit = 10e6;
    check_moments("delay 100ms", lat, 0, 1); /* assert_close(0, 0) holds exactly */
    check_moments("delay 100ms 10ms", lat, jit / sqrt(3), 2);
    check_moments("delay 100ms 10ms distribution uniform", lat, jit / sqrt(3), 3);
    check_moments("delay 100ms 10ms distribution normal", lat, jit, 4);
    check_moments("delay 100ms 10ms distribution pareto", lat, jit, 5);
    check_moments("delay 100ms 10ms distribution paretonormal", lat, jit, 6);
}

static void test_distribution_shapes(void **state)
{
    /* normal: 68.27% within one sd; pareto: right-skewed (median < mean) */
    int64_t *v = delays("delay 100ms 10ms distribution normal", NULL, N, 7);
    int within = 0;
    for (int i = 0; i < N; i++) {
        within += llabs(v[i] - 100000000) <= 10000000;
    }
    assert_binomial(within, N, 0.6827);
    free(v);
    v = delays("delay 100ms 10ms distribution pareto", NULL, N, 8);
    int below = 0;
    for (int i = 0; i < N; i++) {
        below += v[i] < 100000000;
    }
    /* Pareto(3): P(X < mean) = 1 - (1/1.5)^3 = 0.7037 */
    assert_true(fabs((double)below / N - 0.7037) < 0.01);
    free(v);
}

static void test_correlation(void **state)
{
    /* The copula keeps the distribution: moments unchanged. */
    check_moments("delay 100ms 10ms 50% distribution normal", 100e6, 10e6, 9);
    check_moments("delay 100ms 10ms 50%", 100e6, 10e6 / sqrt(3), 10);
    /* Successive delays: for a normal marginal, Pearson = c; for a uniform
     * one, Spearman's rho of a Gaussian copula: (6/pi) asin(c/2). */
    int64_t *v = delays("delay 100ms 10ms 50% distribution normal", NULL, N, 11);
    double r = lag1(v, N);
    print_message("normal 50%%: lag-1 correlation %.4f\n", r);
    assert_true(fabs(r - 0.5) < 0.02);
    free(v);
    v = delays("delay 100ms 10ms 50%", NULL, N, 12);
    r = lag1(v, N);
    print_message("uniform 50%%: lag-1 correlation %.4f (want %.4f)\n", r, 6 / M_PI * asin(0.25));
    assert_true(fabs(r - 6 / M_PI * asin(0.25)) < 0.02);
    free(v);
    /* without correlation, none */
    v = delays("delay 100ms 10ms", NULL, N, 13);
    assert_true(fabs(lag1(v, N)) < Z9999 / sqrt(N));
    free(v);
}

static void test_clamp_at_zero(void **state)
{
    int64_t *v = delays("delay 1ms 5ms distribution normal", NULL, 100000, 14);
    int zeros = 0;
    for (int i = 0; i < 100000; i++) {
        zeros += v[i] == 0;
    }
    /* P(N(1, 5) < 0) = Phi(-0.2) = 0.4207 */
    assert_binomial(zeros, 100000, 0.4207);
    free(v);
}

static char *fake_read(void *arg, const char *path, struct fl_error **errp)
{
    if (!strcmp(path, "three.dist")) {
        return fl_xstrdup("# three values\n-8192 0\n   8192 # one jitter up\n");
    }
    if (!strcmp(path, "bad.dist")) {
        return fl_xstrdup("1 2\n3 x4\n");
    }
    if (!strcmp(path, "empty.dist")) {
        return fl_xstrdup("# nothing\n");
    }
    fl_error_setf(errp, ENOENT, "cannot open '%s'", path);
    return NULL;
}

static void test_user_table(void **state)
{
    const struct impair_parse_opts opts = {fake_read, NULL};
    int64_t *v = delays("delay 10ms 2ms distribution three.dist", &opts, 30000, 15);
    int counts[3] = {0};
    for (int i = 0; i < 30000; i++) {
        if (v[i] == 8000000) {
            counts[0]++;
        } else if (v[i] == 10000000) {
            counts[1]++;
        } else if (v[i] == 12000000) {
            counts[2]++;
        } else {
            fail_msg("delay %lld not in the table", (long long)v[i]);
        }
    }
    for (int k = 0; k < 3; k++) {
        assert_binomial(counts[k], 30000, 1.0 / 3);
    }
    free(v);

    struct impair_link_params p;
    struct fl_error *err = NULL;
    assert_true(
        impair_link_params_parse_string("delay 10ms 2ms distribution three.dist", &opts, &p, NULL));
    assert_int_equal(p.delay.dist, IMPAIR_DIST_TABLE);
    assert_int_equal(impair_dist_table_len(p.delay.table), 3);
    struct fl_buf b = {0};
    impair_link_params_format(&p, &b);
    assert_string_equal(b.data, "delay 10ms 2ms distribution three.dist");
    /* copies share the table by reference */
    struct impair_link_params q;
    impair_link_params_copy(&q, &p);
    impair_link_params_clear(&p);
    assert_int_equal(impair_dist_table_len(q.delay.table), 3);
    impair_link_params_clear(&q);
    fl_buf_free(&b);

    assert_false(
        impair_link_params_parse_string("delay 10ms 2ms distribution bad.dist", &opts, &p, &err));
    assert_error_contains(err, "distribution: bad.dist:2: 'x4' is not a valid table value");
    assert_false(
        impair_link_params_parse_string("delay 10ms 2ms distribution empty.dist", &opts, &p, &err));
    assert_error_contains(err, "empty.dist: no values");
    assert_false(
        impair_link_params_parse_string("delay 10ms 2ms distribution nope.dist", &opts, &p, &err));
    assert_error_contains(err, "'nope.dist' is neither uniform, normal, pareto, paretonormal nor "
                               "a readable netem .dist table: cannot open 'nope.dist'");
    /* without a reader, files are refused with a clear message */
    err = parse_link_err("delay 10ms 2ms distribution three.dist");
    assert_error_contains(err, "table files are not read here");

    /* direct construction */
    int32_t vals[] = {0, 32 * 8192 + 1};
    assert_null(impair_dist_table_create(vals, 2, "t", &err));
    assert_error_contains(err, "t: value 2 (262145) is out of range");
    assert_null(impair_dist_table_create(vals, 0, "t", &err));
    assert_error_contains(err, "needs 1..65536 values, not 0");
    struct impair_dist_table *t = impair_dist_table_create(vals, 1, NULL, NULL);
    assert_string_equal(impair_dist_table_name(t), "table");
    assert_ptr_equal(impair_dist_table_ref(t), t);
    impair_dist_table_unref(t);
    impair_dist_table_unref(t);
    impair_dist_table_unref(NULL);
}

static void test_delay_errors(void **state)
{
    struct fl_error *err = parse_link_err("delay 10ms distribution normal");
    assert_error_contains(err, "delay: distribution normal needs a jitter to shape");
    err = parse_link_err("delay 10ms 2ms distribution gaussian");
    assert_error_contains(err, "distribution: 'gaussian' is not a distribution");
    err = parse_link_err("delay -10ms");
    assert_error_contains(err, "delay: '-10ms' is not a duration: durations cannot be negative");
    err = parse_link_err("delay 10ms -2ms");
    assert_error_contains(err, "delay: jitter: '-2ms' is not a duration");
    err = parse_link_err("delay 10 parsecs");
    assert_error_contains(err, "delay: '10' is not a duration: the unit is missing");
    err = parse_link_err("delay 10ms 1ms 200%");
    assert_error_contains(err, "delay: correlation: '200%' is not a probability (0%..100%)");
    err = parse_link_err("delay 2h");
    assert_error_contains(err, "delay: latency 2h is too long: at most 1h");
    err = parse_link_err("delay");
    assert_error_contains(err, "delay: missing TIME");

    struct impair_link_params p = {0};
    p.delay.latency_ns = -5 * FL_NS_PER_MS;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "delay: latency -5ms is negative: durations are >= 0");
    p.delay.latency_ns = 0;
    p.delay.jitter_ns = 1;
    p.delay.dist = IMPAIR_DIST_TABLE;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "distribution 'table' needs a table");
    p.delay.dist = (enum impair_dist)9;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "distribution 9 is unknown");
    assert_string_equal(impair_dist_name((enum impair_dist)9), "?");
    enum impair_dist d;
    assert_true(impair_dist_from_name("paretonormal", &d));
    assert_int_equal(d, IMPAIR_DIST_PARETONORMAL);
    assert_false(impair_dist_from_name("Normal", &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution_moments), cmocka_unit_test(test_distribution_shapes),
        cmocka_unit_test(test_correlation),          cmocka_unit_test(test_clamp_at_zero),
        cmocka_unit_test(test_user_table),           cmocka_unit_test(test_delay_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
