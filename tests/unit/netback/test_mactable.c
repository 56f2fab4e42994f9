/* Unit tests for the MAC learning table: learning, moves, aging, the
 * size bound under a flood of random source addresses, port removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "netback/mactable.h"

#define AGING (10 * FL_NS_PER_SEC)

static void mac_of(uint32_t n, uint8_t mac[6])
{
    mac[0] = 0x52;
    mac[1] = 0x54;
    mac[2] = (uint8_t)(n >> 24);
    mac[3] = (uint8_t)(n >> 16);
    mac[4] = (uint8_t)(n >> 8);
    mac[5] = (uint8_t)n;
}

static void test_learn_lookup_move(void **state)
{
    struct nb_mactable t;
    nb_mactable_init(&t, AGING);
    uint8_t a[6], b[6];
    mac_of(1, a);
    mac_of(2, b);
    assert_int_equal(nb_mactable_lookup(&t, a, 0), -1); /* empty table */
    nb_mactable_learn(&t, a, 3, 100);
    assert_int_equal(nb_mactable_lookup(&t, a, 200), 3);
    assert_int_equal(nb_mactable_lookup(&t, b, 200), -1);
    nb_mactable_learn(&t, a, 5, 300); /* the address moved */
    assert_int_equal(nb_mactable_lookup(&t, a, 400), 5);
    assert_int_equal(t.used, 1);
    nb_mactable_free(&t);
}

static void test_aging(void **state)
{
    struct nb_mactable t;
    nb_mactable_init(&t, AGING);
    uint8_t a[6];
    mac_of(7, a);
    nb_mactable_learn(&t, a, 1, 0);
    assert_int_equal(nb_mactable_lookup(&t, a, AGING), 1);
    assert_int_equal(nb_mactable_lookup(&t, a, AGING + 1), -1);
    /* Traffic refreshes the entry. */
    nb_mactable_learn(&t, a, 1, AGING);
    assert_int_equal(nb_mactable_lookup(&t, a, 2 * AGING), 1);
    assert_int_equal(nb_mactable_lookup(&t, a, 2 * AGING + 1), -1);
    nb_mactable_free(&t);
}

static void test_bounded_under_spray(void **state)
{
    struct nb_mactable t;
    nb_mactable_init(&t, AGING);
    for (uint32_t i = 0; i < 3 * NB_MAC_TABLE_MAX; i++) {
        uint8_t m[6];
        mac_of(i, m);
        nb_mactable_learn(&t, m, 0, 1000);
    }
    assert_int_equal(t.used, NB_MAC_TABLE_MAX);
    assert_int_equal(t.learn_failures, 2 * NB_MAC_TABLE_MAX);
    uint8_t first[6], last[6];
    mac_of(0, first);
    mac_of(3 * NB_MAC_TABLE_MAX - 1, last);
    assert_int_equal(nb_mactable_lookup(&t, first, 2000), 0);
    assert_int_equal(nb_mactable_lookup(&t, last, 2000), -1);
    /* Once the old entries aged out, new addresses are learned again. */
    nb_mactable_learn(&t, last, 4, 1000 + AGING + 1);
    assert_int_equal(nb_mactable_lookup(&t, last, 1000 + AGING + 1), 4);
    assert_int_equal(t.used, 1);
    nb_mactable_free(&t);
}

static void test_forget_port(void **state)
{
    struct nb_mactable t;
    nb_mactable_init(&t, AGING);
    for (uint32_t i = 0; i < 100; i++) {
        uint8_t m[6];
        mac_of(i, m);
        nb_mactable_learn(&t, m, i % 4, 10);
    }
    nb_mactable_forget_port(&t, 2);
    for (uint32_t i = 0; i < 100; i++) {
        uint8_t m[6];
        mac_of(i, m);
        assert_int_equal(nb_mactable_lookup(&t, m, 20), i % 4 == 2 ? -1 : (int64_t)(i % 4));
    }
    assert_int_equal(t.used, 75);
    nb_mactable_free(&t);
}

/* The learn and lookup memos (a stream repeats the same addresses) must
 * never answer for another address, a moved one, an aged one, or one of
 * freed or rebuilt slots. */
static void test_memos(void **state)
{
    struct nb_mactable t;
    nb_mactable_init(&t, AGING);
    uint8_t a[6], b[6];
    mac_of(1, a);
    mac_of(2, b);
    nb_mactable_learn(&t, a, 1, 10);
    nb_mactable_learn(&t, b, 2, 10);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nb_mactable_lookup(&t, a, 20), 1);
        assert_int_equal(nb_mactable_lookup(&t, a, 20), 1);
        assert_int_equal(nb_mactable_lookup(&t, b, 20), 2);
    }
    nb_mactable_learn(&t, a, 3, 30); /* moved: the memo sees it */
    assert_int_equal(nb_mactable_lookup(&t, a, 30), 3);
    nb_mactable_learn(&t, a, 3, 30 + AGING); /* refreshed through the memo */
    assert_int_equal(nb_mactable_lookup(&t, a, 30 + 2 * AGING), 3);
    assert_int_equal(nb_mactable_lookup(&t, a, 31 + 2 * AGING), -1); /* aged */
    nb_mactable_forget_port(&t, 3);                                  /* rebuilt */
    assert_int_equal(nb_mactable_lookup(&t, a, 40), -1);
    nb_mactable_learn(&t, a, 4, 50);
    assert_int_equal(nb_mactable_lookup(&t, a, 50), 4);
    nb_mactable_free(&t); /* freed, then used again: no memo may outlive it */
    nb_mactable_learn(&t, b, 5, 60);
    assert_int_equal(nb_mactable_lookup(&t, a, 60), -1);
    assert_int_equal(nb_mactable_lookup(&t, b, 60), 5);
    nb_mactable_free(&t);
    const uint8_t m[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    assert_true(nb_mac_key(m) == UINT64_C(0x525400123456) + 1);
}

static void test_group_bit(void **state)
{
    uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    uint8_t ucast[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};
    assert_true(nb_mac_is_group(bcast));
    assert_true(nb_mac_is_group(mcast));
    assert_false(nb_mac_is_group(ucast));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_lookup_move),
        cmocka_unit_test(test_aging),
        cmocka_unit_test(test_bounded_under_spray),
        cmocka_unit_test(test_forget_port),
        cmocka_unit_test(test_memos),
        cmocka_unit_test(test_group_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
