/* The one name rule (core/name.c) that the scenario loader, netback,
 * blkback and the run database share: what it accepts, what it refuses,
 * and the message that says why. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static void test_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {"n1", "a", "Z9", "node-1", "db_primary", "0lead", "a-", "a_"};
    for (size_t i = 0; i < FL_ARRAY_LEN(ok); i++) {
        assert_true(fl_name_valid(ok[i], FL_NAME_MAX));
        struct fl_error *err = NULL;
        assert_true(fl_name_check("node", ok[i], FL_NAME_MAX, &err));
        assert_null(err);
    }
    /* exactly max characters is fine, one more is not */
    char name[FL_NAME_MAX + 2];
    memset(name, 'a', FL_NAME_MAX);
    name[FL_NAME_MAX] = '\0';
    assert_true(fl_name_valid(name, FL_NAME_MAX));
    name[FL_NAME_MAX] = 'a';
    name[FL_NAME_MAX + 1] = '\0';
    assert_false(fl_name_valid(name, FL_NAME_MAX));
    assert_true(fl_name_valid("abc", 3));
    assert_false(fl_name_valid("abcd", 3));
}

/* What each room accepted once and the rule now refuses (netback took '.'
 * and a leading '-'; blkback and the run database took anything
 * non-empty). */
static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {"",     "-n1", "_n1", "n.1", "a b", "n1/x", "ä",
                                      "n1\n", "*",   "a:b", "<x>", "..",  "a\\b"};
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        assert_false(fl_name_valid(bad[i], FL_NAME_MAX));
    }
    assert_false(fl_name_valid(NULL, FL_NAME_MAX));
}

static void expect_msg(const char *what, const char *name, size_t max, const char *want)
{
    struct fl_error *err = NULL;
    assert_false(fl_name_check(what, name, max, &err));
    assert_non_null(err);
    assert_int_equal(err->code, EINVAL);
    assert_string_equal(err->msg, want);
    fl_error_free(err);
}

static void test_messages(void **state)
{
    (void)state;
    expect_msg("network", "bad name", 63,
               "network name 'bad name': character ' ' at 3 is not allowed (valid: 1 to 63 "
               "letters, digits, '-' or '_', starting with a letter or digit)");
    expect_msg("node", "-x", 63,
               "node name '-x': character '-' at 0 is not allowed (valid: 1 to 63 letters, "
               "digits, '-' or '_', starting with a letter or digit)");
    expect_msg("disk", "", 32,
               "disk name '' is empty (valid: 1 to 32 letters, digits, '-' or '_', starting "
               "with a letter or digit)");
    expect_msg("disk", NULL, 32,
               "disk name '' is empty (valid: 1 to 32 letters, digits, '-' or '_', starting "
               "with a letter or digit)");
    expect_msg("nic", "abcd", 3,
               "nic name 'abcd' is longer than 3 characters (valid: 1 to 3 letters, digits, "
               "'-' or '_', starting with a letter or digit)");
    /* control bytes and quotes are shown escaped, never raw */
    expect_msg("node", "a\x1b]0;x", 63,
               "node name 'a\\x1b]0;x': byte 0x1b at 1 is not allowed (valid: 1 to 63 letters, "
               "digits, '-' or '_', starting with a letter or digit)");
    expect_msg("node", "a'b", 63,
               "node name 'a\\x27b': byte 0x27 at 1 is not allowed (valid: 1 to 63 "
               "letters, digits, '-' or '_', starting with a letter or digit)");
    /* a long name is cut in the message */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct fl_error *err = NULL;
    assert_false(fl_name_check("node", longname, 63, &err));
    assert_non_null(strstr(err->msg, "xxx...' is longer than 63 characters"));
    assert_true(strlen(err->msg) < 250);
    fl_error_free(err);
    /* errp NULL: still refuses, no crash */
    assert_false(fl_name_check("node", "a.b", 63, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
