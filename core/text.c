/*
 * Untrusted text made safe for where it is shown.  Guest output is bytes:
 * any byte string a guest prints must come out of these functions as
 * well-formed UTF-8 that its consumer accepts (an XML parser, a JSON
 * parser, a terminal that must not take orders from it).
 *
 *   bytes ──fl_utf8_decode──▶ code points (invalid sequence ─▶ U+FFFD)
 *      ├─▶ fl_text_xml       forbidden XML 1.0 chars ─▶ U+FFFD, < > & " escaped
 *      ├─▶ fl_text_json      controls as \uXXXX, optionally < > & too
 *      └─▶ fl_text_terminal  controls as \xNN (\r \n \t by name), C1 and
 *                            bidi controls as \uXXXX: visible, inert
 *   fl_text_shell  a word for sh (a command shown for copy and paste)
 *
 * The decoder is strict (RFC 3629): overlong forms, surrogates (ED A0..BF)
 * and anything above U+10FFFF are invalid; each invalid sequence costs one
 * byte, so decoding always advances.
 */
#include <string.h>

#include "core/core.h"

#define REPLACEMENT 0xFFFDu

size_t fl_utf8_decode(const char *s, size_t size, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (size == 0) {
        *cp = REPLACEMENT;
        return 0;
    }
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = REPLACEMENT; /* continuation byte, C0/C1 overlong lead, F5..FF */
        return 1;
    }
    if (size < len) {
        *cp = REPLACEMENT;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = REPLACEMENT;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = REPLACEMENT;
        return 1;
    }
    *cp = v;
    return len;
}

size_t fl_utf8_cut(const char *s, size_t size, size_t max)
{
    if (size <= max) {
        return size;
    }
    /* Does a valid character start before max and end after it? */
    for (size_t back = 1; back <= 3 && back <= max; back++) {
        unsigned char c = (unsigned char)s[max - back];
        if ((c & 0xC0) != 0x80) {
            uint32_t cp;
            size_t len = fl_utf8_decode(s + max - back, size - (max - back), &cp);
            return len > back ? max - back : max;
        }
    }
    return max; /* only continuation bytes: invalid ones, each a character */
}

void fl_utf8_put(struct fl_buf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    fl_buf_append(b, out, n);
}

void fl_text_xml(struct fl_buf *b, const char *s, size_t size)
{
    fl_buf_append(b, "", 0);
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        i += fl_utf8_decode(s + i, size - i, &cp);
        switch (cp) {
        case '<':
            fl_buf_puts(b, "&lt;");
            continue;
        case '>':
            fl_buf_puts(b, "&gt;");
            continue;
        case '&':
            fl_buf_puts(b, "&amp;");
            continue;
        case '"':
            fl_buf_puts(b, "&quot;");
            continue;
        }
        /* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
         * [#x10000-#x10FFFF]; the decoder already rules out surrogates. */
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF) {
            cp = REPLACEMENT;
        }
        fl_utf8_put(b, cp);
    }
}

void fl_text_json(struct fl_buf *b, const char *s, size_t size, bool script_safe)
{
    fl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        i += fl_utf8_decode(s + i, size - i, &cp);
        switch (cp) {
        case '"':
            fl_buf_puts(b, "\\\"");
            continue;
        case '\\':
            fl_buf_puts(b, "\\\\");
            continue;
        case '\n':
            fl_buf_puts(b, "\\n");
            continue;
        case '\r':
            fl_buf_puts(b, "\\r");
            continue;
        case '\t':
            fl_buf_puts(b, "\\t");
            continue;
        }
        if (cp < 0x20 || cp == 0x7F || (script_safe && (cp == '<' || cp == '>' || cp == '&')) ||
            cp == 0x2028 || cp == 0x2029) {
            fl_buf_printf(b, "\\u%04x", (unsigned)cp);
        } else {
            fl_utf8_put(b, cp);
        }
    }
    fl_buf_append(b, "\"", 1);
}

/* Characters that reorder or hide the text around them (Trojan Source,
 * CVE-2021-42574): LRM, RLM, ALM, the embeddings/overrides and isolates. */
static bool is_bidi_control(uint32_t cp)
{
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

void fl_text_terminal(struct fl_buf *b, const char *s, size_t size)
{
    fl_buf_append(b, "", 0);
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        size_t len = fl_utf8_decode(s + i, size - i, &cp);
        if (cp == REPLACEMENT && len == 1 && (unsigned char)s[i] >= 0x80) {
            fl_buf_printf(b, "\\x%02x", (unsigned char)s[i]); /* the byte, not a guess */
        } else if (cp == '\r') {
            fl_buf_puts(b, "\\r");
        } else if (cp == '\n') {
            fl_buf_puts(b, "\\n");
        } else if (cp == '\t') {
            fl_buf_puts(b, "\\t");
        } else if (cp < 0x20 || cp == 0x7F) {
            fl_buf_printf(b, "\\x%02x", (unsigned)cp);
        } else if ((cp >= 0x80 && cp <= 0x9F) || is_bidi_control(cp)) {
            fl_buf_printf(b, "\\u%04x", (unsigned)cp); /* C1 (8-bit CSI, OSC) and bidi */
        } else {
            fl_buf_append(b, s + i, len);
        }
        i += len;
    }
}

char *fl_text_terminal_dup(const char *s)
{
    struct fl_buf b = {0};
    fl_text_terminal(&b, s ? s : "", s ? strlen(s) : 0);
    return fl_buf_steal(&b);
}

void fl_text_shell(struct fl_buf *b, const char *s)
{
    static const char plain[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+,:=@%";
    if (*s && strspn(s, plain) == strlen(s)) {
        fl_buf_puts(b, s);
        return;
    }
    fl_text_shell_quoted(b, s);
}

void fl_text_shell_quoted(struct fl_buf *b, const char *s)
{
    fl_buf_puts(b, "'");
    for (; *s; s++) {
        if (*s == '\'') {
            fl_buf_puts(b, "'\\''");
        } else {
            fl_buf_append(b, s, 1);
        }
    }
    fl_buf_puts(b, "'");
}
