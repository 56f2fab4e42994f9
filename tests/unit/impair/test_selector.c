/* impair/selector.c: the one link-selector grammar (scenario links:,
 * net ctl, net serve --link).  Every spelling either parser accepted
 * before they were one is accepted here, with the same meaning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "impair-test.h"

struct ok_case {
    const char *text;
    enum impair_selector_kind kind;
    const char *a, *b, *network; /* NULL: '*' (a, b) or none (network) */
    const char *canonical;
};

static void test_accepted(void **state)
{
    static const struct ok_case cases[] = {
        /* the scenario file's spellings */
        {"*", IMPAIR_SEL_ALL, NULL, NULL, NULL, "*"},
        {"lan", IMPAIR_SEL_NETWORK, NULL, NULL, "lan", "lan"},
        {"n1 -> n2", IMPAIR_SEL_ONE_WAY, "n1", "n2", NULL, "n1 -> n2"},
        {"n1 <-> n2", IMPAIR_SEL_BOTH_WAYS, "n1", "n2", NULL, "n1 <-> n2"},
        {"n1 -> *", IMPAIR_SEL_ONE_WAY, "n1", NULL, NULL, "n1 -> *"},
        {"* <-> n2", IMPAIR_SEL_BOTH_WAYS, NULL, "n2", NULL, "* <-> n2"},
        {"n1 -> n2 @ wan", IMPAIR_SEL_ONE_WAY, "n1", "n2", "wan", "n1 -> n2 @ wan"},
        {"n1 -> * @ b", IMPAIR_SEL_ONE_WAY, "n1", NULL, "b", "n1 -> * @ b"},
        {"  n1<->n2@wan \t", IMPAIR_SEL_BOTH_WAYS, "n1", "n2", "wan", "n1 <-> n2 @ wan"},
        /* net ctl / --link spellings */
        {"n1->n2", IMPAIR_SEL_ONE_WAY, "n1", "n2", NULL, "n1 -> n2"},
        {"n1<->n2", IMPAIR_SEL_BOTH_WAYS, "n1", "n2", NULL, "n1 <-> n2"},
        {"*->*", IMPAIR_SEL_ONE_WAY, NULL, NULL, NULL, "* -> *"},
        {"\tn2->n1\r\n", IMPAIR_SEL_ONE_WAY, "n2", "n1", NULL, "n2 -> n1"},
        /* names with '-' and '.' around the arrow */
        {"etcd-1 -> etcd-2.x", IMPAIR_SEL_ONE_WAY, "etcd-1", "etcd-2.x", NULL,
         "etcd-1 -> etcd-2.x"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        const struct ok_case *c = &cases[i];
        struct impair_selector sel;
        struct fl_error *err = NULL;
        if (!impair_selector_parse(c->text, strlen(c->text), &sel, &err)) {
            fail_msg("'%s': %s", c->text, err->msg);
        }
        assert_int_equal(sel.kind, c->kind);
        if (c->a) {
            assert_string_equal(sel.a, c->a);
        } else {
            assert_null(sel.a);
        }
        if (c->b) {
            assert_string_equal(sel.b, c->b);
        } else {
            assert_null(sel.b);
        }
        if (c->network) {
            assert_string_equal(sel.network, c->network);
        } else {
            assert_null(sel.network);
        }
        struct fl_buf b = {0};
        impair_selector_format(&sel, &b);
        assert_string_equal(b.data, c->canonical);
        /* format then parse gives the same selector */
        struct impair_selector again;
        assert_true(impair_selector_parse(b.data, b.size, &again, NULL));
        assert_int_equal(again.kind, sel.kind);
        fl_buf_free(&b);
        impair_selector_clear(&again);
        impair_selector_clear(&sel);
    }
}

static void test_length_bounds_the_text(void **state)
{
    /* "n1 -> n2: delay 10ms": the selector is the part before ':'. */
    const char *spec = "n1 -> n2: delay 10ms";
    struct impair_selector sel;
    assert_true(impair_selector_parse(spec, 8, &sel, NULL));
    assert_string_equal(sel.b, "n2");
    impair_selector_clear(&sel);
}

static void test_rejected(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"", "is empty (valid selectors:"},
        {"  ", "is empty"},
        {"n1 -> ", "is missing a node name on one side of the arrow (valid selectors:"},
        {"<-> n2", "is missing a node name on one side of the arrow"},
        {"->", "is missing a node name"},
        {"lan @ lan", "uses '@ NETWORK' without a node pair"},
        {"n1 -> n2 @", "has no network name after '@'"},
        {"n1 -> n2 @  ", "has no network name after '@'"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct impair_selector sel;
        struct fl_error *err = NULL;
        if (impair_selector_parse(cases[i].text, strlen(cases[i].text), &sel, &err)) {
            fail_msg("'%s' was accepted", cases[i].text);
        }
        assert_error_contains(err, cases[i].want);
    }
    struct impair_selector sel;
    struct fl_error *err = NULL;
    assert_false(impair_selector_parse("n1\0 -> n2", 9, &sel, &err));
    assert_error_contains(err, "contains a NUL byte");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_length_bounds_the_text),
        cmocka_unit_test(test_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
