/* The link pipeline: stages, rate, reorder/gap, duplicate/corrupt, queue
 * limits, determinism, runtime changes, the word grammar. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

static struct impair_link *make(const char *words, uint64_t seed, const char *stream)
{
    struct impair_link_params p = parse_link_ok(words);
    struct fl_error *err = NULL;
    struct impair_link *link = impair_link_create(&p, seed, impair_stream_id(stream), &err);
    if (!link) {
        fail_msg("%s", err->msg);
    }
    impair_link_params_clear(&p);
    return link;
}

static struct impair_decision decide(struct impair_link *link, int64_t now, uint32_t size)
{
    struct impair_decision d;
    assert_int_equal(impair_link_decide(link, now, size, &d), 0);
    return d;
}

static void test_stages(void **state)
{
    struct impair_link *link = make("", 1, "l");
    struct impair_decision d = decide(link, 5, 100);
    assert_int_equal(d.n_deliveries, 1);
    assert_int_equal(d.reason, IMPAIR_DROP_NONE);
    assert_true(d.deliveries[0].time_ns == 5);
    assert_false(d.deliveries[0].corrupted || d.deliveries[0].reordered ||
                 d.deliveries[0].duplicate);
    impair_link_destroy(link);

    link = make("partition delay 10ms", 1, "l");
    d = decide(link, 0, 100);
    assert_int_equal(d.n_deliveries, 0);
    assert_int_equal(d.reason, IMPAIR_DROP_PARTITION);
    impair_link_destroy(link);

    link = make("mtu 1500", 1, "l");
    assert_int_equal(decide(link, 0, 1500).n_deliveries, 1);
    d = decide(link, 0, 1501);
    assert_int_equal(d.n_deliveries, 0);
    assert_int_equal(d.reason, IMPAIR_DROP_MTU);
    struct impair_link_stats st;
    impair_link_get_stats(link, &st);
    assert_true(st.decided == 2 && st.dropped[IMPAIR_DROP_MTU] == 1 && st.delivered == 1 &&
                st.delivered_bytes == 1500);

    /* time never runs backwards on a link */
    assert_int_equal(impair_link_decide(link, -1, 100, &d), -EINVAL);
    assert_int_equal(d.n_deliveries, 0);
    impair_link_get_stats(link, &st);
    assert_true(st.decided == 2);
    impair_link_destroy(link);
    impair_link_destroy(NULL);

    assert_string_equal(impair_drop_reason_name(IMPAIR_DROP_QUEUE), "queue");
    assert_string_equal(impair_drop_reason_name(IMPAIR_DROP_PARTITION), "partition");
    assert_string_equal(impair_drop_reason_name((enum impair_drop_reason)99), "?");
    assert_string_equal(impair_loss_model_name(IMPAIR_LOSS_GEMODEL), "gemodel");
    enum impair_loss_model m;
    assert_true(impair_loss_model_from_name("state", &m) && m == IMPAIR_LOSS_STATE);
    assert_false(impair_loss_model_from_name("bursty", &m));
}

/* Offers n frames of `size` every `interval` ns; returns the achieved
 * throughput in bits/s from the first send to the last delivery. */
static double throughput(const char *words, int n, uint32_t size, int64_t interval)
{
    struct impair_link *link = make(words, 2, "rate");
    int64_t last = 0;
    for (int i = 0; i < n; i++) {
        struct impair_decision d = decide(link, (int64_t)i * interval, size);
        assert_int_equal(d.n_deliveries, 1);
        assert_true(d.deliveries[0].time_ns >= last); /* a rate keeps frames in order */
        last = d.deliveries[0].time_ns;
    }
    impair_link_destroy(link);
    return (double)n * size * 8 / ((double)last / 1e9);
}

static void test_rate(void **state)
{
    /* saturated: offered far above the rate */
    assert_close(throughput("rate 100mbit", 100000, 1500, 10000), 100e6, 0.005);
    assert_close(throughput("rate 1.5gbit", 100000, 64, 1), 1.5e9, 0.005);
    assert_close(throughput("rate 10kbit", 1000, 100, 1000), 10e3, 0.005);
    /* with delay and jitter the rate still holds */
    assert_close(throughput("delay 10ms 5ms distribution normal rate 20mbit", 100000, 1000, 100),
                 20e6, 0.005);

    /* overheads: 1000 + 20 = 1020 bytes -> 22 cells of 48 -> 22 * (48 + 5) =
     * 1166 bytes on the wire -> 932.8 us at 10 Mbit/s */
    struct impair_link *link = make("rate 10mbit 20 48 5", 3, "rate");
    struct impair_decision d = decide(link, 0, 1000);
    assert_true(d.deliveries[0].time_ns == 932800);
    d = decide(link, 0, 1000);
    assert_true(d.deliveries[0].time_ns == 2 * 932800); /* departs after the first */
    /* an idle link: the frame starts at once */
    d = decide(link, 10000000, 1000);
    assert_true(d.deliveries[0].time_ns == 10000000 + 932800);
    impair_link_destroy(link);

    /* negative packet overhead (e.g. stripping a header) */
    link = make("delay 1ms rate 8mbit -100", 3, "rate");
    d = decide(link, 0, 1100); /* 1000 bytes at 1 byte/us, after 1 ms delay */
    assert_true(d.deliveries[0].time_ns == 1000000 + 1000000);
    d = decide(link, 0, 50); /* clamped at 0 bytes: no extra time */
    assert_true(d.deliveries[0].time_ns == 2000000);
    impair_link_destroy(link);
}

static void test_reorder(void **state)
{
    const int n = 1000000;
    struct {
        const char *words;
        double p;
        uint32_t gap;
    } cases[] = {
        {"delay 10ms reorder 25%", 0.25, 1},
        {"delay 10ms reorder 50% gap 5", 0.5, 5},
        {"delay 10ms 1ms reorder 10% 40%", 0.10, 1},
    };
    for (size_t k = 0; k < FL_ARRAY_LEN(cases); k++) {
        struct impair_link *link = make(cases[k].words, 4 + k, "reorder");
        uint64_t reordered = 0;
        int64_t pending_max = -1; /* latest delivery of a delayed frame */
        bool overtook = false;
        for (int i = 0; i < n; i++) {
            int64_t now = (int64_t)i * 100000;
            struct impair_decision d = decide(link, now, 100);
            if (d.deliveries[0].reordered) {
                reordered++;
                assert_true(d.deliveries[0].time_ns == now);
                overtook |= pending_max > now;
            } else {
                pending_max = d.deliveries[0].time_ns;
            }
        }
        /* netem gap: after a reorder, gap - 1 frames are always delayed,
         * then each frame is reordered with probability p:
         * fraction = p / (1 + (gap - 1) p) */
        double frac = cases[k].p / (1 + (cases[k].gap - 1) * cases[k].p);
        print_message("%s: reordered %.5f (want %.5f)\n", cases[k].words, (double)reordered / n,
                      frac);
        if (strstr(cases[k].words, "40%")) {
            /* correlated: rate still p, variance inflated by (1 + c)/(1 - c) */
            assert_true(fabs((double)reordered - n * frac) <
                        Z9999 * sqrt(n * frac * (1 - frac) * 1.4 / 0.6));
        } else {
            assert_binomial(reordered, n, frac);
        }
        assert_true(overtook);
        struct impair_link_stats st;
        impair_link_get_stats(link, &st);
        assert_true(st.reordered == reordered);
        impair_link_destroy(link);
    }

    /* reorder 100% gap 5: exactly every fifth frame */
    struct impair_link *link = make("delay 10ms reorder 100% gap 5", 7, "reorder");
    for (int i = 0; i < 50; i++) {
        struct impair_decision d = decide(link, i, 100);
        assert_int_equal(d.deliveries[0].reordered, i % 5 == 4);
    }
    impair_link_destroy(link);
}

static void test_duplicate_corrupt(void **state)
{
    const int n = 1000000;
    struct impair_link *link = make("delay 1ms duplicate 10% corrupt 5%", 8, "dc");
    uint64_t dups = 0, corrupted = 0, copies = 0, bits[8] = {0}, low_half = 0;
    const uint32_t size = 1000;
    for (int i = 0; i < n; i++) {
        struct impair_decision d = decide(link, i, size);
        assert_true(d.n_deliveries >= 1 && d.n_deliveries <= 2);
        assert_false(d.deliveries[0].duplicate);
        if (d.n_deliveries == 2) {
            dups++;
            assert_true(d.deliveries[1].duplicate);
        }
        for (uint32_t c = 0; c < d.n_deliveries; c++) {
            const struct impair_delivery *dv = &d.deliveries[c];
            copies++;
            if (dv->corrupted) {
                corrupted++;
                assert_true(dv->corrupt_offset < size);
                assert_int_equal(__builtin_popcount(dv->corrupt_mask), 1);
                bits[__builtin_ctz(dv->corrupt_mask)]++;
                low_half += dv->corrupt_offset < size / 2;
            } else {
                assert_int_equal(dv->corrupt_mask, 0);
                assert_int_equal(dv->corrupt_offset, 0);
            }
        }
    }
    assert_binomial(dups, n, 0.10);
    assert_binomial(corrupted, copies, 0.05);
    for (int b = 0; b < 8; b++) {
        assert_binomial(bits[b], corrupted, 1.0 / 8);
    }
    assert_binomial(low_half, corrupted, 0.5);
    struct impair_link_stats st;
    impair_link_get_stats(link, &st);
    assert_true(st.duplicated == dups && st.corrupted == corrupted && st.delivered == copies);
    impair_link_destroy(link);

    /* an empty frame has no byte to corrupt */
    link = make("corrupt 100%", 9, "dc");
    assert_false(decide(link, 0, 0).deliveries[0].corrupted);
    assert_true(decide(link, 0, 1).deliveries[0].corrupted);
    impair_link_destroy(link);
}

static void test_queue_limit(void **state)
{
    struct impair_link *link = make("delay 10ms limit 5", 10, "q");
    for (int i = 0; i < 10; i++) {
        struct impair_decision d = decide(link, 0, 100);
        assert_int_equal(d.n_deliveries, i < 5 ? 1 : 0);
        if (i >= 5) {
            assert_int_equal(d.reason, IMPAIR_DROP_QUEUE);
        }
    }
    uint32_t frames;
    uint64_t bytes;
    impair_link_queue(link, &frames, &bytes);
    assert_true(frames == 5 && bytes == 500);
    /* one ns before the deliveries the queue is still full ... */
    assert_int_equal(decide(link, 10000000 - 1, 100).reason, IMPAIR_DROP_QUEUE);
    /* ... and at their time it has drained */
    assert_int_equal(decide(link, 10000000, 100).n_deliveries, 1);
    impair_link_queue(link, &frames, &bytes);
    assert_true(frames == 1 && bytes == 100);
    struct impair_link_stats st;
    impair_link_get_stats(link, &st);
    assert_true(st.dropped[IMPAIR_DROP_QUEUE] == 6);
    impair_link_destroy(link);

    link = make("delay 10ms limit-bytes 3000", 10, "q");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(decide(link, 0, 1000).n_deliveries, i < 3 ? 1 : 0);
    }
    assert_int_equal(decide(link, 0, 0).n_deliveries, 1); /* an empty frame still fits */
    impair_link_destroy(link);

    /* a duplicate that does not fit is not made */
    link = make("delay 10ms duplicate 100% limit 3", 11, "q");
    assert_int_equal(decide(link, 0, 100).n_deliveries, 2);
    assert_int_equal(decide(link, 0, 100).n_deliveries, 1);
    assert_int_equal(decide(link, 0, 100).reason, IMPAIR_DROP_QUEUE);
    impair_link_get_stats(link, &st);
    assert_true(st.duplicates_dropped == 1 && st.duplicated == 1);
    impair_link_destroy(link);

    /* a rate-limited link: the queue holds frames waiting for the wire.
     * 1250-byte frames take 10 ms at 1 Mbit/s; offered every 1 ms, about
     * nine in ten overflow a 10-frame queue. */
    link = make("rate 1mbit limit 10", 12, "q");
    uint64_t dropped = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        dropped += decide(link, (int64_t)i * 1000000, 1250).n_deliveries == 0;
    }
    assert_close((double)dropped / n, 0.9, 0.01);
    impair_link_destroy(link);
}

/* A line per decision, like `faultline link simulate`. */
static void log_decision(struct fl_buf *log, int i, const struct impair_decision *d)
{
    fl_buf_printf(log, "%d %u %d", i, d->n_deliveries, (int)d->reason);
    for (uint32_t c = 0; c < d->n_deliveries; c++) {
        const struct impair_delivery *v = &d->deliveries[c];
        fl_buf_printf(log, " %lld/%d/%d/%u/%u", (long long)v->time_ns, v->reordered, v->corrupted,
                      v->corrupt_offset, v->corrupt_mask);
    }
    fl_buf_puts(log, "\n");
}

#define PIPELINE                                                                                   \
    "delay 10ms 3ms 20% distribution pareto loss gemodel 2% 30% duplicate 5% corrupt 1% "          \
    "reorder 10% rate 50mbit limit 100"

static char *run_log(uint64_t seed, int n)
{
    struct impair_link *link = make(PIPELINE, seed, "net0:n1->n2");
    struct fl_buf log = {0};
    for (int i = 0; i < n; i++) {
        struct impair_decision d = decide(link, (int64_t)i * 50000, 64 + (uint32_t)(i * 7) % 1400);
        log_decision(&log, i, &d);
    }
    impair_link_destroy(link);
    return fl_buf_steal(&log);
}

/* B's log when A is driven alongside it (and A's parameters change midway
 * when change_a), or when A does not exist at all. */
static char *run_pair(bool with_a, bool change_a, int n)
{
    struct impair_link *a = make(PIPELINE, 99, "net0:n1->n2");
    struct impair_link *b = make(PIPELINE, 99, "net0:n2->n1");
    struct impair_link_params other = parse_link_ok("delay 1ms loss 50% corrupt 30%");
    struct fl_buf log = {0};
    for (int i = 0; i < n; i++) {
        struct impair_decision d;
        if (with_a) {
            if (change_a && i == n / 2) {
                assert_true(impair_link_set_params(a, &other, NULL));
            }
            d = decide(a, (int64_t)i * 50000, 500);
        }
        d = decide(b, (int64_t)i * 50000, 500);
        log_decision(&log, i, &d);
    }
    impair_link_params_clear(&other);
    impair_link_destroy(a);
    impair_link_destroy(b);
    return fl_buf_steal(&log);
}

static void test_determinism(void **state)
{
    const int n = 100000;
    char *x = run_log(42, n), *y = run_log(42, n), *z = run_log(43, n);
    assert_string_equal(x, y);
    assert_true(strcmp(x, z) != 0);
    /* the log exercises every fate */
    assert_non_null(strstr(x, "/1/0/"));  /* reordered */
    assert_non_null(strstr(x, " 0 3\n")); /* lost */
    free(x);
    free(y);
    free(z);

    char *alone = run_pair(false, false, n), *beside = run_pair(true, false, n),
         *changed = run_pair(true, true, n);
    assert_string_equal(alone, beside);
    assert_string_equal(alone, changed);
    free(alone);
    free(beside);
    free(changed);
}

static void test_set_params(void **state)
{
    struct impair_link *link = make("delay 10ms loss 10%", 13, "s");
    struct impair_link_params old, bad = parse_link_ok("delay 10ms"),
                                   good = parse_link_ok("delay 20ms");
    impair_link_params_copy(&old, impair_link_params(link));
    decide(link, 0, 100);

    /* rejected: the old parameters stay in force */
    bad.reorder.p = pct(10);
    bad.delay.latency_ns = 0;
    struct fl_error *err = NULL;
    assert_false(impair_link_set_params(link, &bad, &err));
    assert_error_contains(err, "reorder requires a delay");
    assert_true(impair_link_params_equal(impair_link_params(link), &old));

    assert_true(impair_link_set_params(link, &good, &err));
    assert_true(impair_link_params_equal(impair_link_params(link), &good));
    struct impair_decision d = decide(link, 1000, 100);
    assert_true(d.deliveries[0].time_ns == 1000 + 20000000);
    struct impair_link_stats st;
    impair_link_get_stats(link, &st);
    assert_true(st.decided == 2); /* counters survive the change */

    /* a table stays alive while a link uses it */
    int32_t vals[] = {-8192, 8192};
    struct impair_link_params t = parse_link_ok("delay 10ms 1ms");
    t.delay.dist = IMPAIR_DIST_TABLE;
    t.delay.table = impair_dist_table_create(vals, 2, "two", NULL);
    assert_true(impair_link_set_params(link, &t, NULL));
    impair_link_params_clear(&t);
    d = decide(link, 2000, 100);
    int64_t dl = d.deliveries[0].time_ns - 2000;
    assert_true(dl == 9000000 || dl == 11000000);

    /* create validates too */
    assert_null(impair_link_create(&bad, 1, 1, &err));
    assert_error_contains(err, "reorder requires a delay");

    impair_link_params_clear(&old);
    impair_link_params_clear(&bad);
    impair_link_params_clear(&good);
    impair_link_destroy(link);
}

static void test_words_roundtrip(void **state)
{
    static const struct {
        const char *in, *canonical;
    } cases[] = {
        {"", ""},
        {"partition", "partition"},
        {"delay 10ms", "delay 10ms"},
        {"delay 10ms 2ms 25% distribution normal", "delay 10ms 2ms 25% distribution normal"},
        {"distribution pareto delay 100ms 20ms", "delay 100ms 20ms distribution pareto"},
        {"loss 1%", "loss 1%"},
        {"drop random 1% 25%", "loss 1% 25%"},
        {"loss gemodel 1% 30%", "loss gemodel 1% 30% 100% 0%"},
        {"loss state 1% 30% 2% 40% 0.5%", "loss state 1% 30% 2% 40% 0.5%"},
        {"duplicate 1% corrupt 0.1%", "duplicate 1% corrupt 0.1%"},
        {"delay 10ms reorder 25% 50% gap 5", "delay 10ms reorder 25% 50% gap 5"},
        {"rate 100mbit", "rate 100mbit"},
        {"rate 1.5gbit 20", "rate 1.5gbit 20"},
        {"rate 10MBps -4 48 5", "rate 80mbit -4 48 5"},
        {"limit 1000 limit-bytes 1MB mtu 1500", "limit 1000 limit-bytes 1MB mtu 1500"},
        {"mtu 9k", "mtu 9216"},
        {"delay 10ms 0 25%", "delay 10ms 0 25%"},
        {"mtu 1500 limit 10 rate 1mbit reorder 1% gap 2 corrupt 2% duplicate 3% loss 4% "
         "delay 5ms 1ms partition",
         "partition delay 5ms 1ms loss 4% duplicate 3% corrupt 2% reorder 1% gap 2 rate 1mbit "
         "limit 10 mtu 1500"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct impair_link_params p = parse_link_ok(cases[i].in), q;
        struct fl_buf b = {0};
        impair_link_params_format(&p, &b);
        assert_string_equal(b.data, cases[i].canonical);
        q = parse_link_ok(b.data);
        assert_true(impair_link_params_equal(&p, &q));
        fl_buf_free(&b);
        impair_link_params_clear(&p);
        impair_link_params_clear(&q);
    }
    /* format appends to what the buffer holds */
    struct impair_link_params p = parse_link_ok("loss 1%");
    struct fl_buf b = {0};
    fl_buf_puts(&b, "n1->n2: ");
    impair_link_params_format(&p, &b);
    assert_string_equal(b.data, "n1->n2: loss 1%");
    fl_buf_free(&b);

    /* argv form */
    char *argv[] = {"delay", "10ms", "loss", "1%"};
    assert_true(impair_link_params_parse(4, argv, &p, NULL));
    assert_true(p.delay.latency_ns == 10000000 && p.loss.p == pct(1));
}

static void test_words_errors(void **state)
{
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"reorder 25%", "reorder requires a delay (netem semantics: reordered frames are sent "
                        "immediately, the rest delayed): add e.g. 'delay 10ms'"},
        {"delay 10ms gap 5", "gap 5 requires a reorder probability (e.g. 'reorder 25% gap 5')"},
        {"loss 101%", "loss: '101%' is not a probability (0%..100%)"},
        {"duplicate 1.5", "duplicate: '1.5' is not a probability: write it as a percentage"},
        {"delay -1ms", "delay: '-1ms' is not a duration: durations cannot be negative"},
        {"delay 10 ms", "delay: '10' is not a duration: the unit is missing"},
        {"delay 10sec", "delay: '10sec' is not a duration: unknown unit 'sec'"},
        {"rate 100mbits", "rate: '100mbits' is not a rate: unknown unit 'mbits'"},
        {"rate", "rate: missing RATE"},
        {"rate 1mbit 20 0 5", "rate: a cell overhead (5) needs a cell size"},
        {"rate 1mbit 20 48 -48", "rate: cell overhead -48 is out of range (-47..65535 bytes"},
        {"rate 1mbit 99999", "rate packet overhead: '99999' is not a valid rate packet overhead"},
        {"rate 20tbit", "rate: 20tbit is above the maximum 10tbit"},
        {"dealy 10ms", "'dealy' is not a link parameter; did you mean 'delay'?"},
        {"jitter 10ms", "'jitter' is not a link parameter: expected partition, delay"},
        {"delay 10ms delay 20ms", "'delay' is given twice"},
        {"limit -1", "limit: '-1' is not a valid limit: expected a whole number 0..4294967295"},
        {"limit 10.5", "'10.5' is not a valid limit"},
        {"mtu 8GiB", "mtu: '8GiB' is too large (at most 4294967295 bytes)"},
        {"mtu", "mtu: missing SIZE"},
        {"limit-bytes lots", "limit-bytes: 'lots' is not a size"},
        {"gap x", "gap: 'x' is not a valid gap"},
        {"corrupt", "corrupt: missing PERCENT"},
        {"distribution", "distribution: missing NAME"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct fl_error *err = parse_link_err(cases[i].in);
        if (!strstr(err->msg, cases[i].msg)) {
            fail_msg("'%s': got '%s', want '%s'", cases[i].in, err->msg, cases[i].msg);
        }
        fl_error_free(err);
    }
    /* validation of hand-built parameters */
    struct impair_link_params p = {0};
    struct fl_error *err = NULL;
    p.rate.packet_overhead = 10;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "rate: packet overhead, cell size and cell overhead need a rate");
    p.rate.bits_per_s = 1000;
    p.rate.cell_size = 100000;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "rate: cell size 100000 is out of range");
    p.rate.cell_size = 0;
    p.rate.packet_overhead = 70000;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "rate: packet overhead 70000 is out of range");
    p.rate.packet_overhead = 0;
    p.delay.jitter_ns = -1;
    assert_false(impair_link_params_validate(&p, &err));
    assert_error_contains(err, "delay: jitter -1ns is negative");
}

/* Random word sequences from the grammar's vocabulary: the parser either
 * accepts them, and then format/parse is the identity, or rejects them with
 * a message; it never crashes (run under ASan in scripts/test). */
static void test_words_random(void **state)
{
    static const char *const vocab[] = {
        "partition", "delay",   "10ms",      "2ms",          "0",       "-1ms",    "25%",
        "100%",      "150%",    "1.5",       "distribution", "normal",  "pareto",  "paretonormal",
        "uniform",   "table",   "loss",      "drop",         "random",  "gemodel", "state",
        "1%",        "30%",     "duplicate", "corrupt",      "reorder", "gap",     "5",
        "rate",      "100mbit", "10MBps",    "-20",          "48",      "limit",   "limit-bytes",
        "1MB",       "mtu",     "1500",      "9k",           "x",       "",
    };
    struct impair_rng rng;
    impair_rng_seed(&rng, 5, impair_stream_id("words:random"));
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char *argv[12];
        int argc = (int)impair_rng_below(&rng, 12);
        for (int i = 0; i < argc; i++) {
            argv[i] = (char *)vocab[impair_rng_below(&rng, FL_ARRAY_LEN(vocab))];
        }
        struct impair_link_params p, q;
        struct fl_error *err = NULL;
        if (!impair_link_params_parse(argc, argv, &p, &err)) {
            assert_non_null(err);
            assert_true(strlen(err->msg) > 10);
            fl_error_free(err);
            continue;
        }
        accepted++;
        struct fl_buf b = {0};
        impair_link_params_format(&p, &b);
        if (!impair_link_params_parse_string(b.data, NULL, &q, &err)) {
            fail_msg("format gave '%s' which does not parse: %s", b.data, err->msg);
        }
        assert_true(impair_link_params_equal(&p, &q));
        fl_buf_free(&b);
        impair_link_params_clear(&p);
        impair_link_params_clear(&q);
    }
    assert_true(accepted > 100); /* the vocabulary does reach valid sets */
}

/* Random valid parameter sets, random sizes and times, parameters changed
 * midway: every decision keeps the engine's promises. */
static void test_random_invariants(void **state)
{
    struct impair_rng rng;
    impair_rng_seed(&rng, 6, impair_stream_id("invariants"));
    for (int set = 0; set < 300; set++) {
        struct impair_link_params p = {0};
        p.partitioned = impair_rng_below(&rng, 20) == 0;
        p.mtu = impair_rng_below(&rng, 3) == 0 ? 1000 : 0;
        p.loss.model = (enum impair_loss_model)impair_rng_below(&rng, IMPAIR_LOSS__COUNT);
        p.loss.p = impair_rng_u32(&rng) >> 2;
        p.loss.corr = impair_rng_u32(&rng);
        p.loss.ge.p = impair_rng_u32(&rng) >> 3;
        p.loss.ge.r = impair_rng_u32(&rng);
        p.loss.ge.one_minus_h = impair_rng_u32(&rng);
        p.loss.ge.one_minus_k = impair_rng_u32(&rng) >> 4;
        p.loss.state.p13 = impair_rng_u32(&rng) >> 4;
        p.loss.state.p14 = impair_rng_u32(&rng) >> 4;
        p.loss.state.p31 = impair_rng_u32(&rng) >> 1;
        p.loss.state.p32 = impair_rng_u32(&rng) >> 2;
        p.loss.state.p23 = impair_rng_u32(&rng);
        p.duplicate.p = impair_rng_u32(&rng) >> 2;
        p.corrupt.p = impair_rng_u32(&rng) >> 2;
        p.corrupt.corr = impair_rng_u32(&rng) >> 1;
        p.delay.latency_ns = (int64_t)impair_rng_below(&rng, 50000000);
        p.delay.jitter_ns = (int64_t)impair_rng_below(&rng, 20000000);
        p.delay.corr = impair_rng_below(&rng, 2) ? impair_rng_u32(&rng) : 0;
        p.delay.dist = (enum impair_dist)impair_rng_below(&rng, IMPAIR_DIST_TABLE);
        if (p.delay.latency_ns && impair_rng_below(&rng, 2)) {
            p.reorder.p = impair_rng_u32(&rng) >> 2;
            p.reorder.gap = (uint32_t)impair_rng_below(&rng, 4);
        }
        if (impair_rng_below(&rng, 2)) {
            p.rate.bits_per_s = 1000 + impair_rng_below(&rng, 1000000000);
            p.rate.packet_overhead = (int32_t)impair_rng_below(&rng, 100) - 50;
            p.rate.cell_size = (uint32_t)impair_rng_below(&rng, 64);
            p.rate.cell_overhead = p.rate.cell_size ? (int32_t)impair_rng_below(&rng, 8) : 0;
        }
        p.limit_frames = (uint32_t)impair_rng_below(&rng, 3) * 20;
        p.limit_bytes = impair_rng_below(&rng, 3) * 20000;
        struct fl_error *err = NULL;
        struct impair_link *link = impair_link_create(&p, (uint64_t)set, 1, &err);
        if (!link) {
            fail_msg("set %d: %s", set, err->msg);
        }
        int64_t now = 0;
        uint64_t frames = 0, copies = 0, drops = 0;
        for (int i = 0; i < 2000; i++) {
            now += (int64_t)impair_rng_below(&rng, 200000);
            uint32_t size = (uint32_t)impair_rng_below(&rng, 1600);
            if (i == 1000) {
                p.delay.latency_ns /= 2;
                p.loss.model = IMPAIR_LOSS_RANDOM;
                assert_true(impair_link_set_params(link, &p, NULL));
            }
            struct impair_decision d;
            assert_int_equal(impair_link_decide(link, now, size, &d), 0);
            frames++;
            assert_true(d.n_deliveries <= IMPAIR_MAX_DELIVERIES);
            if (!d.n_deliveries) {
                assert_true(d.reason > IMPAIR_DROP_NONE && d.reason < IMPAIR_DROP__COUNT);
                drops++;
                continue;
            }
            assert_int_equal(d.reason, IMPAIR_DROP_NONE);
            for (uint32_t c = 0; c < d.n_deliveries; c++) {
                const struct impair_delivery *v = &d.deliveries[c];
                copies++;
                assert_true(v->time_ns >= now);
                assert_int_equal(v->duplicate, c > 0);
                if (v->corrupted) {
                    assert_true(v->corrupt_offset < size);
                    assert_int_equal(__builtin_popcount(v->corrupt_mask), 1);
                }
                if (v->reordered) {
                    assert_true(v->time_ns == now);
                }
            }
            uint32_t qf;
            uint64_t qb;
            impair_link_queue(link, &qf, &qb);
            if (p.limit_frames) {
                assert_true(qf <= p.limit_frames);
            }
            if (p.limit_bytes) {
                assert_true(qb <= p.limit_bytes);
            }
        }
        struct impair_link_stats st;
        impair_link_get_stats(link, &st);
        uint64_t dropped = 0;
        for (int r = 0; r < IMPAIR_DROP__COUNT; r++) {
            dropped += st.dropped[r];
        }
        assert_true(st.decided == frames && dropped == drops && st.delivered == copies);
        assert_true(st.delivered == frames - drops + st.duplicated);
        impair_link_destroy(link);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stages),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_duplicate_corrupt),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_set_params),
        cmocka_unit_test(test_words_roundtrip),
        cmocka_unit_test(test_words_errors),
        cmocka_unit_test(test_words_random),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
