/* impair/tq.c: the timer queue against a reference model, with the
 * invariant checker run after every operation (OVS tests/test-heap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Compiled in here (not linked from fl_impair) so that the test can
 * break the structure on purpose. */
#include "impair/tq.c"

#include "impair-test.h"

static void check(const struct impair_tq *tq)
{
    struct fl_error *err = NULL;
    if (!impair_tq_check(tq, &err)) {
        fail_msg("invariant: %s", err->msg);
    }
}

/* Reference: an unsorted array; pop scans for the minimum (time, seq). */
struct ref {
    int64_t time[4096];
    uint64_t seq[4096];
    uintptr_t data[4096];
    size_t len;
    uint64_t next_seq;
};

static void ref_push(struct ref *r, int64_t t, uintptr_t d)
{
    r->time[r->len] = t;
    r->seq[r->len] = r->next_seq++;
    r->data[r->len++] = d;
}

static bool ref_pop(struct ref *r, int64_t *t, uintptr_t *d)
{
    if (!r->len) {
        return false;
    }
    size_t m = 0;
    for (size_t i = 1; i < r->len; i++) {
        if (r->time[i] < r->time[m] || (r->time[i] == r->time[m] && r->seq[i] < r->seq[m])) {
            m = i;
        }
    }
    *t = r->time[m];
    *d = r->data[m];
    r->len--;
    r->time[m] = r->time[r->len];
    r->seq[m] = r->seq[r->len];
    r->data[m] = r->data[r->len];
    return true;
}

static void run_random(int mode, uint64_t seed)
{
    struct impair_tq *tq = impair_tq_create();
    static struct ref r;
    memset(&r, 0, sizeof r);
    struct impair_rng rng;
    impair_rng_seed(&rng, seed, (uint64_t)mode);
    int64_t base = 0;
    uintptr_t next_data = 1;
    check(tq);
    for (int op = 0; op < 20000; op++) {
        bool push = r.len < 4000 && (r.len == 0 || impair_rng_below(&rng, 100) < 55);
        if (push) {
            int64_t t;
            switch (mode) {
            case 0: /* monotone: constant delay, all fast path */
                base += (int64_t)impair_rng_below(&rng, 3);
                t = base;
                break;
            case 1: /* jitter: mostly monotone with excursions */
                base += (int64_t)impair_rng_below(&rng, 10);
                t = base + (int64_t)impair_rng_below(&rng, 50) - 25;
                break;
            default: /* arbitrary, with many ties */
                t = (int64_t)impair_rng_below(&rng, 64);
                break;
            }
            impair_tq_push(tq, t, (void *)next_data);
            ref_push(&r, t, next_data++);
        } else {
            int64_t t1, t2, tp;
            void *d1, *dp;
            uintptr_t d2;
            bool peeked = impair_tq_peek(tq, &tp, &dp);
            bool a = impair_tq_pop(tq, &t1, &d1), b = ref_pop(&r, &t2, &d2);
            assert_int_equal(a, b);
            assert_int_equal(peeked, a);
            if (a) {
                assert_true(t1 == t2);
                assert_true((uintptr_t)d1 == d2);
                assert_true(tp == t1 && dp == d1);
            }
        }
        assert_int_equal(impair_tq_len(tq), r.len);
        check(tq);
        if (mode == 0) {
            assert_int_equal(tq->heap.len, 0); /* the fast path took everything */
        }
    }
    int64_t t1, t2;
    void *d1;
    uintptr_t d2;
    while (ref_pop(&r, &t2, &d2)) {
        assert_true(impair_tq_pop(tq, &t1, &d1));
        assert_true(t1 == t2 && (uintptr_t)d1 == d2);
        check(tq);
    }
    assert_false(impair_tq_pop(tq, &t1, &d1));
    assert_false(impair_tq_peek(tq, NULL, NULL));
    assert_true(impair_tq_next_time(tq) == INT64_MAX);
    impair_tq_destroy(tq);
}

static void test_random_monotone(void **state)
{
    run_random(0, 11);
}

static void test_random_jitter(void **state)
{
    run_random(1, 12);
}

static void test_random_ties(void **state)
{
    run_random(2, 13);
}

static void test_fifo_ties_and_next_time(void **state)
{
    struct impair_tq *tq = impair_tq_create();
    impair_tq_push(tq, 10, (void *)1);
    impair_tq_push(tq, 5, (void *)2); /* heap */
    impair_tq_push(tq, 10, (void *)3);
    impair_tq_push(tq, 5, (void *)4); /* heap, after 2 */
    check(tq);
    assert_true(impair_tq_next_time(tq) == 5);
    uintptr_t want[] = {2, 4, 1, 3};
    for (size_t i = 0; i < 4; i++) {
        void *d;
        assert_true(impair_tq_pop(tq, NULL, &d));
        assert_true((uintptr_t)d == want[i]);
        check(tq);
    }
    impair_tq_destroy(tq);
    impair_tq_destroy(NULL);
}

static void test_checker_detects_damage(void **state)
{
    struct impair_tq *tq = impair_tq_create();
    for (int i = 0; i < 10; i++) {
        impair_tq_push(tq, 100 + i, NULL);
    }
    for (int i = 0; i < 10; i++) {
        impair_tq_push(tq, 50 - i, NULL); /* heap */
    }
    check(tq);
    struct fl_error *err = NULL;

    /* fifo out of order */
    fifo_at(tq, 3)->key = 1000;
    assert_false(impair_tq_check(tq, &err));
    assert_error_contains(err, "fifo not sorted at 4");
    fifo_at(tq, 3)->key = 103;

    /* heap property */
    int64_t saved = tq->heap.v[0].key;
    tq->heap.v[0].key = 99;
    assert_false(impair_tq_check(tq, &err));
    assert_error_contains(err, "heap property broken");
    tq->heap.v[0].key = saved;

    /* heap entry later than the fifo tail */
    saved = tq->heap.v[5].key;
    tq->heap.v[5].key = 500;
    assert_false(impair_tq_check(tq, &err));
    assert_error_contains(err, "after the fifo tail");
    tq->heap.v[5].key = saved;

    /* sequence numbers from the future */
    tq->heap.v[1].seq = tq->next_seq + 1;
    assert_false(impair_tq_check(tq, &err));
    assert_error_contains(err, "not below next seq");
    tq->heap.v[1].seq = 11;

    tq->fifo_len = tq->fifo_alloc + 1;
    assert_false(impair_tq_check(tq, &err));
    assert_error_contains(err, "length beyond allocation");
    tq->fifo_len = 10;
    check(tq);
    impair_tq_destroy(tq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_monotone),
        cmocka_unit_test(test_random_jitter),
        cmocka_unit_test(test_random_ties),
        cmocka_unit_test(test_fifo_ties_and_next_time),
        cmocka_unit_test(test_checker_detects_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
