/* Hostile scenario files: each is rejected (or accepted) quickly, with a
 * clear error naming the file, the place and the value, and without
 * exhausting memory.
 *
 * What broke once: the nesting limit applied only after libyaml had built
 * its whole tree (100 000 levels: 40 s), and looking back over every
 * earlier anchor, key or name made 100 000 of them cost 15-100 s each.
 * Every case here took more than 5 s before and takes well under a second
 * now; the 5 s bound is the regression alarm, not the measurement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/topology.h"

#ifdef FL_HOSTILE_SLOW
#define BOUND_NS (60 * FL_NS_PER_SEC) /* ASan/UBSan build */
#else
#define BOUND_NS (5 * FL_NS_PER_SEC)
#endif
#define MANY 100000

/* Loads text; returns the error text (caller frees) or NULL when valid. */
static char *load(const struct fl_buf *b, int64_t *took)
{
    struct fl_error *err = NULL;
    int64_t t0 = fl_clock_mono_ns();
    struct topo_scenario *s = topo_load_string("h.yaml", b->data, b->size, &err);
    *took = fl_clock_mono_ns() - t0;
    topo_scenario_free(s);
    if (!err) {
        return NULL;
    }
    char *msg = fl_xstrdup(err->msg);
    fl_error_free(err);
    return msg;
}

/* The file must be rejected quickly with `want` in the error, and every
 * line of the error must be short (a huge value is never echoed whole). */
static void expect_error(const struct fl_buf *b, const char *want)
{
    int64_t took;
    char *msg = load(b, &took);
    if (!msg || !strstr(msg, want)) {
        fprintf(stderr, "want '%s', got: %.600s\n", want, msg ? msg : "(valid)");
    }
    assert_non_null(msg);
    assert_non_null(strstr(msg, want));
    assert_true(took < BOUND_NS);
    for (const char *line = msg; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        assert_true(len < 1024);
        assert_non_null(strstr(line, "h.yaml:")); /* every line names the file */
        line += len + (nl ? 1 : 0);
    }
    free(msg);
}

static void expect_valid(const struct fl_buf *b)
{
    int64_t took;
    char *msg = load(b, &took);
    if (msg) {
        fprintf(stderr, "unexpected error: %.600s\n", msg);
    }
    assert_null(msg);
    assert_true(took < BOUND_NS);
}

static void repeat(struct fl_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fl_buf_puts(b, s);
    }
}

/* ---- YAML level ---------------------------------------------------- */

/* Billion laughs: 10^30 leaves if aliases were copied; shared, they cost
 * 300 nodes, and the timeline rejects the list for what it is. */
static void test_billion_laughs(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 30; i++) {
        fl_buf_printf(&b, "x-%d: &a%d [", i, i);
        for (int k = 0; k < 10; k++) {
            fl_buf_printf(&b, "%s*a%d", k ? ", " : "", i - 1);
        }
        fl_buf_puts(&b, "]\n");
    }
    fl_buf_puts(&b, "nodes: {n1: {}}\ntimeline: *a29\n");
    expect_error(&b, "is not a mapping: a timeline event");
    fl_buf_free(&b);
}

/* The same through merge keys: each level merges the one below ten times. */
static void test_merge_laughs(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-0: &m0 {vcpus: 1}\n");
    for (int i = 1; i < 30; i++) {
        fl_buf_printf(&b, "x-%d: &m%d {<<: [", i, i);
        for (int k = 0; k < 10; k++) {
            fl_buf_printf(&b, "%s*m%d", k ? ", " : "", i - 1);
        }
        fl_buf_puts(&b, "]}\n");
    }
    fl_buf_puts(&b, "nodes: {n1: *m29}\n");
    expect_valid(&b);
    fl_buf_free(&b);
}

/* 100 000 unclosed levels, flow and block: the limit stops the parser at
 * level 65 (the error's column says where), long before the end. */
static void test_deep_nesting(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-deep: ");
    repeat(&b, "[", MANY);
    expect_error(&b, "h.yaml:1:73: nesting deeper than 64 levels");
    fl_buf_reset(&b);
    fl_buf_puts(&b, "x-deep: ");
    repeat(&b, "{a: ", MANY);
    expect_error(&b, "h.yaml:1:");
    expect_error(&b, "nesting deeper than 64 levels");
    fl_buf_reset(&b);
    fl_buf_puts(&b, "x-deep:\n  ");
    repeat(&b, "- ", MANY);
    fl_buf_puts(&b, "x\nnodes: {n1: {}}\n");
    expect_error(&b, "h.yaml:2:131: nesting deeper than 64 levels");
    /* inside an anchor, aliased many times: still the definition's place */
    fl_buf_reset(&b);
    fl_buf_puts(&b, "x-a: &a ");
    repeat(&b, "[", 70);
    repeat(&b, "]", 70);
    fl_buf_puts(&b, "\nx-b: [");
    repeat(&b, "*a, ", 1000);
    fl_buf_puts(&b, "*a]\nnodes: {n1: {}}\n");
    expect_error(&b, "h.yaml:1:73: nesting deeper than 64 levels");
    fl_buf_free(&b);
}

static void test_recursive_alias(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    fl_buf_puts(&b, "nodes: &n {n1: {x-self: *n}}\n");
    expect_error(&b, "h.yaml:1:8: an alias refers to a node that contains it");
    fl_buf_free(&b);
}

/* 100 000 anchors, each aliased once (libyaml's own loader scanned every
 * anchor for each alias: 41 s). */
static void test_many_anchors(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-a: [");
    for (int i = 0; i < MANY; i++) {
        fl_buf_printf(&b, "%s&a%d %d", i ? "," : "", i, i);
    }
    fl_buf_puts(&b, "]\nx-b: [");
    for (int i = 0; i < MANY; i++) {
        fl_buf_printf(&b, "%s*a%d", i ? "," : "", MANY - 1 - i);
    }
    fl_buf_puts(&b, "]\nnodes: {n1: {}}\n");
    expect_valid(&b);
    /* and a duplicate anchor at the end is still found */
    fl_buf_puts(&b, "x-c: &a7 1\n");
    expect_error(&b, "found duplicate anchor");
    fl_buf_free(&b);
}

/* ---- huge values ----------------------------------------------------- */

static void test_huge_scalars(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    size_t big = (size_t)16 << 20;
    /* a 16 MiB node name (an explicit key: libyaml refuses implicit keys
     * over 1024 characters, with a syntax error): refused, quoted short */
    fl_buf_puts(&b, "nodes:\n  ? ");
    repeat(&b, "n", big);
    fl_buf_puts(&b, "\n  : {}\n");
    expect_error(&b, "is not a valid node name");
    fl_buf_reset(&b);
    fl_buf_puts(&b, "nodes: {");
    repeat(&b, "n", big);
    fl_buf_puts(&b, ": {}}\n");
    expect_error(&b, "h.yaml:1:16777225: YAML syntax error");
    /* a 16 MiB unknown key: no "did you mean" over it */
    fl_buf_reset(&b);
    fl_buf_puts(&b, "nodes: {n1: {}}\nrun:\n  ? ");
    repeat(&b, "k", big);
    fl_buf_puts(&b, "\n  : 1\n");
    expect_error(&b, "unknown key 'kkkk");
    /* a 64 MiB description is a valid text value */
    fl_buf_reset(&b);
    fl_buf_puts(&b, "nodes: {n1: {}}\nrun: {description: \"");
    repeat(&b, "x", big * 4);
    fl_buf_puts(&b, "\"}\n");
    expect_valid(&b);
    /* a 16 MiB duration */
    fl_buf_reset(&b);
    fl_buf_puts(&b, "nodes: {n1: {}}\nrun: {duration: ");
    repeat(&b, "9", big);
    fl_buf_puts(&b, "s}\n");
    expect_error(&b, "run.duration: '9999");
    fl_buf_free(&b);
}

/* Terminal escapes, NUL and invalid UTF-8 in names are never echoed raw. */
static void test_control_bytes(void **state)
{
    (void)state;
    static const char *const names[] = {"\"n\\e]0;pwned\\a\"", "\"n\\0x\"", "\"n\\r\"",
                                        "\"\\u202e1n\""};
    for (size_t i = 0; i < FL_ARRAY_LEN(names); i++) {
        struct fl_buf b = {0};
        fl_buf_printf(&b, "nodes: {%s: {}}\n", names[i]);
        int64_t took;
        char *msg = load(&b, &took);
        assert_non_null(msg);
        for (const char *p = msg; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            assert_true(ch >= 0x20 || ch == '\n');
        }
        assert_null(strstr(msg, "\xe2\x80\xae")); /* RIGHT-TO-LEFT OVERRIDE */
        free(msg);
        fl_buf_free(&b);
    }
    struct fl_buf b = {0};
    fl_buf_puts(&b, "nodes: {n1: {}}\nrun: {name: \"\xff\xfe\"}\n");
    expect_error(&b, "h.yaml:1:1: YAML syntax error: invalid leading UTF-8 octet");
    fl_buf_free(&b);
}

/* ---- many entries (each check looked back over every earlier one) ---- */

static void many(struct fl_buf *b, const char *head, const char *fmt, const char *tail)
{
    fl_buf_puts(b, head);
    for (int i = 0; i < MANY; i++) {
        fl_buf_puts(b, i ? "," : "");
        fl_buf_printf(b, fmt, i);
    }
    fl_buf_puts(b, tail);
}

static void test_many_keys(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    many(&b, "nodes: {n1: {}}\nrun: {", "k%d: 1", "}\n");
    expect_error(&b, "... and 99800 more errors");
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nrun: {", "name: x%d", "}\n");
    expect_error(&b, "key 'name' is given twice");
    fl_buf_free(&b);
}

static void test_many_names(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    many(&b, "nodes: {n1: {}}\nrun: {duration: 24h}\ntimeline: [", "{at: 1s, mark: m, name: e%d}",
         "]\n");
    expect_valid(&b);
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\ntimeline: [", "{at: 1s, mark: m%d, name: e}", "]\n");
    expect_error(&b, "is the name of another event too");
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nrun: {duration: 24h}\ntimeline: [{at: 1s, mark: m, name: e0},",
         "{after: zz%d, mark: m}", "]\n");
    expect_error(&b, "is not the name of a timeline event");
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nchecks: [", "{node: n1, command: x, name: c%d}", "]\n");
    expect_valid(&b);
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nchecks: [", "{node: n1, command: x%d, name: c}", "]\n");
    expect_error(&b, "is the name of another check too");
    fl_buf_free(&b);
}

static void test_many_sections(void **state)
{
    (void)state;
    struct fl_buf b = {0};
    many(&b, "nodes: {n1: {}}\nnetworks: {", "w%d: {}", "}\n");
    expect_error(&b, "networks: 100000 networks is too many (at most 1024)");
    fl_buf_reset(&b);
    many(&b, "nodes: {", "n%d: {}", "}\n");
    expect_error(&b, "nodes: 100000 nodes is too many (at most 254)");
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {disks: {", "d%d: 1MiB", "}}}\n");
    expect_valid(&b);
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {env: {", "E%d: v", "}}}\n");
    expect_valid(&b);
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nimage: {packages: [", "p%d", "]}\n");
    expect_valid(&b);
    fl_buf_reset(&b);
    many(&b, "nodes: {n1: {}}\nnemesis: {", "m%d: {faults: pause, every: 10s}", "}\n");
    expect_valid(&b);
    fl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billion_laughs), cmocka_unit_test(test_merge_laughs),
        cmocka_unit_test(test_deep_nesting),   cmocka_unit_test(test_recursive_alias),
        cmocka_unit_test(test_many_anchors),   cmocka_unit_test(test_huge_scalars),
        cmocka_unit_test(test_control_bytes),  cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_many_names),     cmocka_unit_test(test_many_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
