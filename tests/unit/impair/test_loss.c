/* Loss models through the link pipeline: rates and burst lengths against
 * their closed forms, with fixed seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

struct loss_run {
    uint64_t frames, lost, bursts, lost_after_lost;
};

static struct loss_run run(const char *words, uint64_t frames, uint64_t seed)
{
    struct impair_link_params p = parse_link_ok(words);
    struct fl_error *err = NULL;
    struct impair_link *link = impair_link_create(&p, seed, impair_stream_id("test:loss"), &err);
    assert_non_null(link);
    struct loss_run r = {frames, 0, 0, 0};
    bool prev = false;
    for (uint64_t i = 0; i < frames; i++) {
        struct impair_decision d;
        assert_int_equal(impair_link_decide(link, (int64_t)i * 1000, 100, &d), 0);
        bool lost = d.n_deliveries == 0;
        if (lost) {
            assert_int_equal(d.reason, IMPAIR_DROP_LOSS);
            r.lost++;
            r.bursts += !prev;
            r.lost_after_lost += prev;
        }
        prev = lost;
    }
    struct impair_link_stats st;
    impair_link_get_stats(link, &st);
    assert_true(st.decided == frames);
    assert_true(st.dropped[IMPAIR_DROP_LOSS] == r.lost);
    assert_true(st.delivered == frames - r.lost);
    impair_link_destroy(link);
    impair_link_params_clear(&p);
    return r;
}

static void test_random_loss_binomial(void **state)
{
    const uint64_t n = 1000000;
    struct loss_run r = run("loss 1%", n, 1);
    assert_binomial(r.lost, n, 0.01);
    r = run("loss random 30%", n, 2);
    assert_binomial(r.lost, n, 0.30);
    r = run("loss 0%", n / 10, 3);
    assert_int_equal(r.lost, 0);
    r = run("loss 100%", n / 10, 4);
    assert_true(r.lost == n / 10);
}

static void test_random_loss_correlation(void **state)
{
    /* Sticky correlation keeps the rate p and makes
     * P(loss | previous loss) = c + (1 - c) p. */
    const uint64_t n = 2000000;
    const double p = 0.05, c = 0.5;
    struct loss_run r = run("loss 5% 50%", n, 5);
    /* variance inflation of a lag-1 correlation c chain: (1 + c) / (1 - c) */
    double half = Z9999 * sqrt(n * p * (1 - p) * (1 + c) / (1 - c));
    assert_true(fabs((double)r.lost - n * p) < half);
    assert_binomial(r.lost_after_lost, r.lost, c + (1 - c) * p);
    /* mean burst length 1 / ((1 - c)(1 - p)) */
    assert_close((double)r.lost / r.bursts, 1 / ((1 - c) * (1 - p)), 0.02);
}

/* Gilbert-Elliott closed form.  Loss of a frame depends on the state it
 * meets; the state then moves.  Returns the loss rate and mean burst. */
static void ge_closed_form(double p, double r, double lh, double lk, double *rate, double *burst)
{
    double pb = p / (p + r), pg = 1 - pb;
    *rate = pg * lk + pb * lh;
    /* P(previous kept, this lost) = sum_s pi_s (1 - l_s) sum_s' P(s->s') l_s' */
    double start =
        pg * (1 - lk) * ((1 - p) * lk + p * lh) + pb * (1 - lh) * (r * lk + (1 - r) * lh);
    *burst = *rate / start;
}

static void test_gilbert_elliott(void **state)
{
    const uint64_t n = 10000000;
    struct {
        const char *words;
        double p, r, lh, lk;
    } cases[] = {
        /* simple Gilbert: burst = 1 / r */
        {"loss gemodel 5% 25%", 0.05, 0.25, 1.0, 0.0},
        /* full Gilbert-Elliott */
        {"loss gemodel 2% 20% 80% 1%", 0.02, 0.20, 0.80, 0.01},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        double rate, burst;
        ge_closed_form(cases[i].p, cases[i].r, cases[i].lh, cases[i].lk, &rate, &burst);
        struct loss_run res = run(cases[i].words, n, 10 + i);
        double got_rate = (double)res.lost / n, got_burst = (double)res.lost / res.bursts;
        print_message("%s: loss %.5f (model %.5f), burst %.4f (model %.4f)\n", cases[i].words,
                      got_rate, rate, got_burst, burst);
        assert_close(got_rate, rate, 0.02);
        assert_close(got_burst, burst, 0.02);
    }
    /* tc's defaults: r = 100% - p, 1-h = 100%, 1-k = 0 */
    struct impair_link_params p = parse_link_ok("loss gemodel 10%");
    assert_int_equal(p.loss.model, IMPAIR_LOSS_GEMODEL);
    assert_true(p.loss.ge.r == IMPAIR_PROB_MAX - pct(10));
    assert_true(p.loss.ge.one_minus_h == IMPAIR_PROB_MAX);
    assert_int_equal(p.loss.ge.one_minus_k, 0);
}

/* Stationary distribution of the 4-state chain and its loss statistics. */
static void state4_closed_form(const double q[5], double *rate, double *burst)
{
    double p13 = q[0], p31 = q[1], p32 = q[2], p23 = q[3], p14 = q[4];
    double P[4][4] = {
        {1 - p13 - p14, 0, p13, p14},
        {0, 1 - p23, p23, 0},
        {p31, p32, 1 - p31 - p32, 0},
        {1, 0, 0, 0},
    };
    double pi[4] = {1, 0, 0, 0};
    for (int it = 0; it < 100000; it++) {
        double nx[4] = {0};
        for (int a = 0; a < 4; a++) {
            for (int b = 0; b < 4; b++) {
                nx[b] += pi[a] * P[a][b];
            }
        }
        memcpy(pi, nx, sizeof pi);
    }
    /* a frame is lost iff the state it moves to is 3 or 4 */
    *rate = pi[2] + pi[3];
    double start = pi[0] * (p13 + p14) + pi[1] * p23;
    *burst = *rate / start;
}

static void test_four_state(void **state)
{
    const uint64_t n = 10000000;
    const double q[5] = {0.05, 0.30, 0.20, 0.10, 0.01};
    double rate, burst;
    state4_closed_form(q, &rate, &burst);
    struct loss_run r = run("loss state 5% 30% 20% 10% 1%", n, 20);
    double got_rate = (double)r.lost / n, got_burst = (double)r.lost / r.bursts;
    print_message("4-state: loss %.5f (model %.5f), burst %.4f (model %.4f)\n", got_rate, rate,
                  got_burst, burst);
    assert_close(got_rate, rate, 0.02);
    assert_close(got_burst, burst, 0.02);

    /* tc's defaults: p31 = 100% - p13, p32 = 0, p23 = 100%, p14 = 0 */
    struct impair_link_params p = parse_link_ok("loss state 10%");
    assert_true(p.loss.state.p31 == IMPAIR_PROB_MAX - pct(10));
    assert_int_equal(p.loss.state.p32, 0);
    assert_true(p.loss.state.p23 == IMPAIR_PROB_MAX);
    assert_int_equal(p.loss.state.p14, 0);
}

static void test_loss_errors(void **state)
{
    struct fl_error *err = parse_link_err("loss state 60% 10% 10% 10% 50%");
    assert_error_contains(err, "loss state: p13 + p14 = 60% + 50% exceeds 100%");
    err = parse_link_err("loss state 10% 60% 50%");
    assert_error_contains(err, "loss state: p31 + p32 = 60% + 50% exceeds 100%");
    err = parse_link_err("loss 150%");
    assert_error_contains(err, "loss: '150%' is not a probability (0%..100%)");
    err = parse_link_err("loss");
    assert_error_contains(err, "loss: missing PERCENT");
    err = parse_link_err("loss gemodel");
    assert_error_contains(err, "loss gemodel p: missing PERCENT");
    err = parse_link_err("loss gemodel 1% 2% 3% 4x");
    assert_error_contains(err, "loss gemodel 1-k: '4x' is not a probability");
    err = parse_link_err("loss bursty 5%");
    assert_error_contains(err, "loss: 'bursty' is neither a percentage nor a model");
    err = parse_link_err("loss 1% drop 2%");
    assert_error_contains(err, "'loss' is given twice");
    struct impair_link_params p = {0};
    p.loss.model = (enum impair_loss_model)42;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "loss: model 42 is unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_loss_binomial), cmocka_unit_test(test_random_loss_correlation),
        cmocka_unit_test(test_gilbert_elliott),      cmocka_unit_test(test_four_state),
        cmocka_unit_test(test_loss_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
