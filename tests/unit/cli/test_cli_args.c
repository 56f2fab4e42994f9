/* Unit tests for the cli's shared argument helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/cli.h"

static void test_seed_valid(void **state)
{
    uint64_t v = 1;
    assert_true(cli_parse_seed("t", "0", &v));
    assert_true(v == 0);
    assert_true(cli_parse_seed("t", "0x10", &v));
    assert_true(v == 16);
    assert_true(cli_parse_seed("t", "18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
}

static void test_seed_invalid(void **state)
{
    uint64_t v = 7;
    /* strtoull would wrap "-5" to a huge number: it must be refused. */
    const char *bad[] = {"-5", "", "abc", "12x", "18446744073709551616", " 5", " -5", "+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(cli_parse_seed("t", bad[i], &v));
        assert_true(v == 7); /* untouched on error */
    }
    assert_false(cli_parse_seed("t", NULL, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_valid),
        cmocka_unit_test(test_seed_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
