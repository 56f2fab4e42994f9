/* One disk-fault grammar (issue 13): `disk serve`'s compact options
 * ('write:EIO:1%', 'write:5ms:1ms', 'read:EIO:0.1%:0-1G') are impair's disk
 * words with ':' as a separator, an errno naming an error clause, a bare
 * time naming a delay and START-END naming a range.  Each shorthand must
 * parse to exactly what its long form does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "impair/impair.h"

static void parse(const char *text, struct impair_disk_params *p)
{
    char *copy = fl_xstrdup(text);
    char *words[64];
    int n = 0;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
        words[n++] = t;
    }
    struct fl_error *err = NULL;
    if (!impair_disk_params_parse(n, words, NULL, p, &err)) {
        fail_msg("'%s': %s", text, err->msg);
    }
    free(copy);
}

static void same(const char *shorthand, const char *canonical)
{
    struct impair_disk_params a, b;
    parse(shorthand, &a);
    parse(canonical, &b);
    if (!impair_disk_params_equal(&a, &b)) {
        struct fl_buf fa = {0}, fb = {0};
        impair_disk_params_format(&a, &fa);
        impair_disk_params_format(&b, &fb);
        fail_msg("'%s' parses to '%s', '%s' to '%s'", shorthand, fa.data, canonical, fb.data);
    }
    impair_disk_params_clear(&a);
    impair_disk_params_clear(&b);
}

static void test_shorthands_are_the_grammar(void **state)
{
    same("write:EIO:1%", "write error 1% EIO");
    same("read:EIO:0.1%:0-1G", "read error 0.1% EIO range 0 1G");
    same("write:ENOSPC:100%:1M-2M", "write error 100% ENOSPC range 1M 2M");
    same("all:EIO:5%", "error 5% EIO");
    same("2ms", "delay 2ms");
    same("write:5ms:1ms", "write delay 5ms 1ms");
    same("write:error:1%:EIO", "write error 1% EIO");
    same("all write:EIO:1% all read corrupt 2%", "write error 1% EIO read corrupt 2%");
    same("flush:20ms write:EIO:1%", "flush delay 20ms write error 1% EIO");
}

static void test_shorthand_errors_name_the_word(void **state)
{
    const char *bad[][2] = {
        {"wrte:EIO:1%", "did you mean 'write'"},
        {"write:EIO", "missing PERCENT"},
        {"write:EIO:1%:2M-1M", "not after its start"},
        {"10parsec", "not a duration"},
        {"flush:EIO:1%:0-1G", "no extent"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        char *copy = fl_xstrdup(bad[i][0]);
        char *words[1] = {copy};
        struct impair_disk_params p;
        struct fl_error *err = NULL;
        assert_false(impair_disk_params_parse(1, words, NULL, &p, &err));
        if (!strstr(err->msg, bad[i][1])) {
            fail_msg("'%s': '%s' lacks '%s'", bad[i][0], err->msg, bad[i][1]);
        }
        fl_error_free(err);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shorthands_are_the_grammar),
        cmocka_unit_test(test_shorthand_errors_name_the_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
