/* Unit tests for core/text.c: the escapers every writer of guest text uses
 * (junit.xml, summary.json, report.html, events.log, the terminal), fed
 * adversarial byte strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* Hostile inputs: invalid UTF-8 of every kind, characters XML forbids,
 * terminal controls, bidi overrides, a NUL in the middle. */
static const struct {
    const char *bytes;
    size_t size;
} hostile[] = {
#define H(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    H("\xff\xfe plain"),
    H("\xc0\xaf overlong slash"),
    H("\xe0\x80\xaf overlong 3"),
    H("\xed\xa0\x80 lone high surrogate"),
    H("\xed\xbf\xbf lone low surrogate"),
    H("\xef\xbf\xbe U+FFFE \xef\xbf\xbf U+FFFF"),
    H("\xf4\x90\x80\x80 past U+10FFFF"),
    H("\xe2\x82 truncated euro"),
    H("\x80\x80 continuation only"),
    H("\x1b]52;c;aGk=\x07 clipboard \x1b[2J\x1b[H"),
    H("evil\rPASS fake"),
    H("\x01\x02\x0b\x0c\x7f controls"),
    H("\xc2\x9b"
      "31m C1 CSI \xc2\x9d OSC"),
    H("\xe2\x80\xae bidi override \xe2\x81\xa6 isolate \xe2\x80\x8f"),
    H("a\0b nul"),
    H("<script>&\"'</script>"),
    H("ok \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad"),
#undef H
};

/* Output must be valid UTF-8 (every U+FFFD an honest EF BF BD). */
static void assert_valid_utf8(const char *s, size_t size)
{
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        size_t n = fl_utf8_decode(s + i, size - i, &cp);
        if (cp == 0xFFFD) {
            assert_int_equal(n, 3);
            assert_memory_equal(s + i, "\xef\xbf\xbd", 3);
        }
        i += n;
    }
}

static void test_decode(void **state)
{
    uint32_t cp;
    assert_int_equal(fl_utf8_decode("A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(fl_utf8_decode("\xe2\x82\xac", 3, &cp), 3);
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(fl_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    /* Each invalid sequence costs exactly one byte. */
    static const char *const bad[] = {
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xe2\x82", "\x80",         "\xff",         "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(fl_utf8_decode(bad[i], strlen(bad[i]), &cp), 1);
        assert_int_equal(cp, 0xFFFD);
    }
    assert_int_equal(fl_utf8_decode("", 0, &cp), 0);
}

static void test_cut(void **state)
{
    const char *s = "ab\xe2\x82\xac"
                    "cd"; /* a b € c d */
    assert_int_equal(fl_utf8_cut(s, 7, 100), 7);
    assert_int_equal(fl_utf8_cut(s, 7, 5), 5);
    assert_int_equal(fl_utf8_cut(s, 7, 4), 2); /* not inside the euro */
    assert_int_equal(fl_utf8_cut(s, 7, 3), 2);
    assert_int_equal(fl_utf8_cut(s, 7, 2), 2);
    /* Invalid bytes are single characters: cutting after them is fine. */
    assert_int_equal(fl_utf8_cut("\x80\x80\x80\x80\x80", 5, 3), 3);
    /* The 4096-byte cut of 4095 ASCII bytes and a 4-byte emoji. */
    char big[4100];
    memset(big, 'x', 4095);
    memcpy(big + 4095, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(fl_utf8_cut(big, 4099, 4096), 4095);
}

static void test_xml(void **state)
{
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        struct fl_buf b = {0};
        fl_text_xml(&b, hostile[i].bytes, hostile[i].size);
        assert_int_equal(strlen(b.data), b.size); /* no NUL inside */
        assert_valid_utf8(b.data, b.size);
        for (size_t k = 0; k < b.size; k++) {
            unsigned char c = (unsigned char)b.data[k];
            assert_false(c < 0x20 && c != '\t' && c != '\n' && c != '\r');
            assert_false(c == '<' || c == '>' || c == '"');
        }
        assert_null(strstr(b.data, "\xef\xbf\xbe"));
        assert_null(strstr(b.data, "\xef\xbf\xbf"));
        assert_null(strstr(b.data, "\xed\xa0"));
        fl_buf_free(&b);
    }
    struct fl_buf b = {0};
    fl_text_xml(&b, "a<b>&\"\xe2\x82\xac\x1b", 10);
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;\xe2\x82\xac\xef\xbf\xbd");
    fl_buf_free(&b);
}

static void test_json(void **state)
{
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        for (int script = 0; script < 2; script++) {
            struct fl_buf b = {0};
            fl_text_json(&b, hostile[i].bytes, hostile[i].size, script);
            assert_int_equal(strlen(b.data), b.size);
            assert_valid_utf8(b.data, b.size);
            assert_int_equal(b.data[0], '"');
            assert_int_equal(b.data[b.size - 1], '"');
            for (size_t k = 0; k < b.size; k++) {
                assert_true((unsigned char)b.data[k] >= 0x20);
                if (script) {
                    assert_false(b.data[k] == '<' || b.data[k] == '>' || b.data[k] == '&');
                }
            }
            fl_buf_free(&b);
        }
    }
    struct fl_buf b = {0};
    fl_text_json(&b, "q\"\\\n\x01\xff", 6, false);
    assert_string_equal(b.data, "\"q\\\"\\\\\\n\\u0001\xef\xbf\xbd\"");
    fl_buf_free(&b);
}

static void test_terminal(void **state)
{
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        struct fl_buf b = {0};
        fl_text_terminal(&b, hostile[i].bytes, hostile[i].size);
        assert_int_equal(strlen(b.data), b.size);
        assert_valid_utf8(b.data, b.size);
        for (size_t k = 0; k < b.size; k++) {
            unsigned char c = (unsigned char)b.data[k];
            assert_false(c < 0x20 || c == 0x7f); /* no ESC, CR, BEL, newline */
        }
        assert_null(strstr(b.data, "\xc2\x9b"));     /* no 8-bit CSI */
        assert_null(strstr(b.data, "\xe2\x80\xae")); /* no RLO */
        assert_null(strstr(b.data, "\xe2\x81\xa6")); /* no LRI */
        fl_buf_free(&b);
    }
    char *s = fl_text_terminal_dup("\x1b]52;c;x\x07 evil\rPASS \xe2\x80\xae \xff \xe2\x82\xac");
    assert_string_equal(s, "\\x1b]52;c;x\\x07 evil\\rPASS \\u202e \\xff \xe2\x82\xac");
    free(s);
    s = fl_text_terminal_dup(NULL);
    assert_string_equal(s, "");
    free(s);
}

/* fl_text_shell: sh reads each word back as exactly the bytes it was
 * (every hostile input up to its NUL, plus quotes, spaces, globs,
 * expansions and an empty word). */
static void test_shell(void **state)
{
    static const char *const extra[] = {
        "",  "plain/path-1.yaml", "it's", "a b", "$(rm -rf /)", "`x`", "*", "~", "a\\nb", "'''",
        "-n"};
    size_t n = FL_ARRAY_LEN(hostile) + FL_ARRAY_LEN(extra);
    for (size_t i = 0; i < n; i++) {
        const char *word =
            i < FL_ARRAY_LEN(hostile) ? hostile[i].bytes : extra[i - FL_ARRAY_LEN(hostile)];
        struct fl_buf b = {0};
        fl_buf_puts(&b, "printf '%s' ");
        fl_text_shell(&b, word);
        FILE *p = popen(b.data, "r");
        assert_non_null(p);
        char out[256];
        size_t got = fread(out, 1, sizeof out, p);
        assert_int_equal(pclose(p), 0);
        if (got != strlen(word) || memcmp(out, word, got)) {
            fail_msg("word %zu did not come back from sh: %s", i, b.data);
        }
        fl_buf_free(&b);
    }
    struct fl_buf b = {0};
    fl_text_shell(&b, "runs/a-1.yaml");
    assert_string_equal(b.data, "runs/a-1.yaml"); /* plain words stay readable */
    fl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),   cmocka_unit_test(test_cut),
        cmocka_unit_test(test_xml),      cmocka_unit_test(test_json),
        cmocka_unit_test(test_terminal), cmocka_unit_test(test_shell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
