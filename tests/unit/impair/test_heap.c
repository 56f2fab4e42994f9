/* core/heap.c: the one heap (the loop's timers, impair's timer queue),
 * against a reference model, with the invariant checker run after every
 * operation (OVS tests/test-heap.c: check_heap).  Removal from the middle
 * goes through the `moved` callback, as the loop uses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

#define N 2048

/* An element that knows where it is, like a timer. */
struct item {
    int64_t key;
    uint64_t seq;
    size_t index; /* SIZE_MAX when not in the heap */
    bool in;
};

static void item_moved(void *data, size_t index)
{
    ((struct item *)data)->index = index;
}

/* Every invariant: heap property and length (fl_heap_check), every
 * entry's recorded index, and each entry's key/seq as its item says. */
static void check_heap(const struct fl_heap *h, struct item *items, size_t n_in)
{
    struct fl_error *err = NULL;
    if (!fl_heap_check(h, &err)) {
        fail_msg("invariant: %s", err->msg);
    }
    assert_int_equal(h->len, n_in);
    for (size_t i = 0; i < h->len; i++) {
        struct item *it = h->v[i].data;
        assert_int_equal(it->index, i);
        assert_true(it->in);
        assert_true(h->v[i].key == it->key && h->v[i].seq == it->seq);
    }
    (void)items;
}

/* The minimum (key, seq) among items in the heap, by scanning. */
static struct item *ref_min(struct item *items, size_t n)
{
    struct item *m = NULL;
    for (size_t i = 0; i < n; i++) {
        if (items[i].in &&
            (!m || items[i].key < m->key || (items[i].key == m->key && items[i].seq < m->seq))) {
            m = &items[i];
        }
    }
    return m;
}

static void run(uint64_t seed, int64_t key_range)
{
    static struct item items[N];
    memset(items, 0, sizeof items);
    struct fl_heap h;
    fl_heap_init(&h, item_moved);
    struct impair_rng rng;
    impair_rng_seed(&rng, seed, 1);
    size_t n_in = 0;
    uint64_t seq = 0;
    check_heap(&h, items, 0);
    for (int op = 0; op < 30000; op++) {
        uint64_t what = impair_rng_below(&rng, 100);
        struct item *it = &items[impair_rng_below(&rng, N)];
        if (what < 50 && !it->in) {
            it->key = (int64_t)impair_rng_below(&rng, (uint64_t)key_range);
            it->seq = seq++;
            it->in = true;
            fl_heap_push(&h, it->key, it->seq, it);
            n_in++;
        } else if (what < 75 && n_in) {
            struct item *want = ref_min(items, N);
            const struct fl_heap_entry *top = fl_heap_top(&h);
            assert_non_null(top);
            assert_ptr_equal(top->data, want);
            fl_heap_pop(&h);
            want->in = false;
            want->index = SIZE_MAX;
            n_in--;
        } else if (it->in) {
            /* From the middle, as fl_timer_disarm does. */
            fl_heap_remove(&h, it->index);
            it->in = false;
            it->index = SIZE_MAX;
            n_in--;
        }
        check_heap(&h, items, n_in);
    }
    /* Drain: keys come out in (key, seq) order. */
    int64_t last_key = INT64_MIN;
    uint64_t last_seq = 0;
    while (fl_heap_top(&h)) {
        const struct fl_heap_entry *top = fl_heap_top(&h);
        assert_true(top->key > last_key || (top->key == last_key && top->seq > last_seq));
        last_key = top->key;
        last_seq = top->seq;
        ((struct item *)top->data)->in = false;
        fl_heap_pop(&h);
        check_heap(&h, items, --n_in);
    }
    assert_null(fl_heap_top(&h));
    fl_heap_free(&h);
}

static void test_random_wide_keys(void **state)
{
    run(21, INT64_C(1) << 40);
}

static void test_random_many_ties(void **state)
{
    run(22, 8); /* ties: seq must decide, first-in first-out */
}

static void test_checker_detects_damage(void **state)
{
    struct fl_heap h;
    fl_heap_init(&h, NULL);
    for (int i = 0; i < 20; i++) {
        fl_heap_push(&h, 20 - i, (uint64_t)i, NULL);
    }
    struct fl_error *err = NULL;
    assert_true(fl_heap_check(&h, &err));
    int64_t saved = h.v[7].key;
    h.v[7].key = -1; /* smaller than its parent */
    assert_false(fl_heap_check(&h, &err));
    assert_error_contains(err, "heap property broken at 7 (parent 3)");
    h.v[7].key = saved;
    /* equal keys: the seq order decides */
    fl_heap_free(&h);
    fl_heap_push(&h, 5, 2, NULL);
    fl_heap_push(&h, 5, 3, NULL);
    h.v[1].seq = 1;
    assert_false(fl_heap_check(&h, &err));
    assert_error_contains(err, "heap property broken at 1");
    h.v[1].seq = 3;
    h.len = h.alloc + 1;
    assert_false(fl_heap_check(&h, &err));
    assert_error_contains(err, "beyond allocation");
    h.len = 2;
    assert_true(fl_heap_check(&h, &err));
    fl_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_wide_keys),
        cmocka_unit_test(test_random_many_ties),
        cmocka_unit_test(test_checker_detects_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
