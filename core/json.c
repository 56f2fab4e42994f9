/*
 * faultline's one JSON reader (QMP messages, segment.json, summary.json
 * read back by the index of a directory of runs): RFC 8259, strictly.
 * Whatever wrote the text, QEMU or an earlier run, anything malformed is
 * an error, never a guess.
 *
 *   numbers   -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  ("01", "1.",
 *             ".5", "+1", "0x1" are errors)
 *   strings   valid UTF-8 only (no overlong forms, no encoded surrogates,
 *             nothing above U+10FFFF); \u escapes of surrogates only as a
 *             high-low pair; no raw control characters
 *   literals  true, false, null (no NaN, Infinity)
 *
 * Deliberate limits beyond the RFC (it allows them): nesting deeper than
 * 64 and \u0000 (strings are C strings here) are errors.
 * tests/hostile/hv checks this against python3's json as an oracle.  A
 * number keeps its text beside its double, so a 64-bit seed reads back
 * exactly (fl_json_u64).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

#include "core/core.h"

#define JSON_MAX_DEPTH 64

struct jp {
    const char *p, *end;
    const char *start;
    struct fl_error **errp;
    bool failed;
};

static void jfail(struct jp *j, const char *what)
{
    if (!j->failed) {
        j->failed = true;
        fl_error_setf(j->errp, EPROTO, "JSON: %s at offset %zu", what, (size_t)(j->p - j->start));
    }
}

static void ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool hex4(struct jp *j, unsigned *out)
{
    if (j->end - j->p < 4) {
        return false;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0) {
            return false;
        }
        v = v << 4 | (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return true;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7),
 * 0 when there is none. */
static size_t utf8_len(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t left = (size_t)(end - p);
    unsigned char c = u[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* no overlong forms */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || u[1] < lo || u[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (u[i] < 0x80 || u[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

static char *jstring(struct jp *j)
{
    if (j->p >= j->end || *j->p != '"') {
        jfail(j, "string expected");
        return NULL;
    }
    j->p++;
    struct fl_buf b = {0};
    fl_buf_append(&b, "", 0);
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            jfail(j, "control character in string");
            fl_buf_free(&b);
            return NULL;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(j->p - 1, j->end);
            if (!n) {
                j->p--;
                jfail(j, "invalid UTF-8 in string");
                fl_buf_free(&b);
                return NULL;
            }
            fl_buf_append(&b, j->p - 1, n);
            j->p += n - 1;
            continue;
        }
        if (c != '\\') {
            fl_buf_append(&b, &c, 1);
            continue;
        }
        if (j->p >= j->end) {
            break;
        }
        char e = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            fl_buf_append(&b, &map[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            unsigned cp, lo;
            if (!hex4(j, &cp)) {
                jfail(j, "bad \\u escape");
                fl_buf_free(&b);
                return NULL;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                jfail(j, "lone low surrogate in \\u escape");
                fl_buf_free(&b);
                return NULL;
            }
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') {
                    jfail(j, "lone high surrogate in \\u escape");
                    fl_buf_free(&b);
                    return NULL;
                }
                j->p += 2;
                if (!hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    jfail(j, "bad surrogate pair");
                    fl_buf_free(&b);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                jfail(j, "NUL in string");
                fl_buf_free(&b);
                return NULL;
            }
            fl_utf8_put(&b, cp);
        } else {
            jfail(j, "bad escape");
            fl_buf_free(&b);
            return NULL;
        }
    }
    if (j->p >= j->end) {
        jfail(j, "unterminated string");
        fl_buf_free(&b);
        return NULL;
    }
    j->p++;
    return fl_buf_steal(&b);
}

static struct fl_json *jvalue(struct jp *j, int depth);

static struct fl_json *jnew(enum fl_json_type t)
{
    struct fl_json *v = fl_xcalloc(1, sizeof *v);
    v->type = t;
    return v;
}

static struct fl_json *jcontainer(struct jp *j, int depth, bool obj)
{
    struct fl_json *v = jnew(obj ? FL_JSON_OBJ : FL_JSON_ARR);
    size_t alloc = 0, kalloc = 0;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
        j->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        if (obj) {
            ws(j);
            key = jstring(j);
            if (!key) {
                break;
            }
            ws(j);
            if (j->p >= j->end || *j->p != ':') {
                free(key);
                jfail(j, "':' expected");
                break;
            }
            j->p++;
        }
        struct fl_json *item = jvalue(j, depth + 1);
        if (!item) {
            free(key);
            break;
        }
        v->items = fl_xgrow(v->items, &alloc, v->n + 1, sizeof *v->items);
        if (obj) {
            v->keys = fl_xgrow(v->keys, &kalloc, v->n + 1, sizeof *v->keys);
            v->keys[v->n] = key;
        }
        v->items[v->n++] = item;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            return v;
        }
        jfail(j, obj ? "',' or '}' expected" : "',' or ']' expected");
        break;
    }
    fl_json_free(v);
    return NULL;
}

static bool digits(struct jp *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }
    return j->p > s;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static struct fl_json *jnumber(struct jp *j)
{
    const char *s = j->p;
    if (*j->p == '-') {
        j->p++;
    }
    if (j->p < j->end && *j->p == '0') {
        j->p++;
        if (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            jfail(j, "leading zero in number");
            return NULL;
        }
    } else if (!digits(j)) {
        jfail(j, "digit expected in number");
        return NULL;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) {
            jfail(j, "digit expected after '.' in number");
            return NULL;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (!digits(j)) {
            jfail(j, "digit expected in exponent");
            return NULL;
        }
    }
    /* The text is a valid number: strtod reads exactly it (the C locale
     * is never changed in faultline). */
    struct fl_json *v = jnew(FL_JSON_NUM);
    v->str = fl_xstrndup(s, (size_t)(j->p - s)); /* the number's text */
    v->num = strtod(v->str, NULL);
    return v;
}

static struct fl_json *jvalue(struct jp *j, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        jfail(j, "nesting too deep");
        return NULL;
    }
    ws(j);
    if (j->p >= j->end) {
        jfail(j, "value expected");
        return NULL;
    }
    char c = *j->p;
    if (c == '{' || c == '[') {
        return jcontainer(j, depth, c == '{');
    }
    if (c == '"') {
        char *s = jstring(j);
        if (!s) {
            return NULL;
        }
        struct fl_json *v = jnew(FL_JSON_STR);
        v->str = s;
        return v;
    }
    static const struct {
        const char *word;
        enum fl_json_type t;
        bool b;
    } words[] = {{"true", FL_JSON_BOOL, true},
                 {"false", FL_JSON_BOOL, false},
                 {"null", FL_JSON_NULL, false}};
    for (size_t i = 0; i < FL_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i].word, n)) {
            j->p += n;
            struct fl_json *v = jnew(words[i].t);
            v->b = words[i].b;
            return v;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return jnumber(j);
    }
    jfail(j, "unexpected character");
    return NULL;
}

struct fl_json *fl_json_parse(const char *text, size_t size, struct fl_error **errp)
{
    struct jp j = {.p = text, .end = text + size, .start = text, .errp = errp};
    struct fl_json *v = jvalue(&j, 0);
    if (v) {
        ws(&j);
        if (j.p != j.end) {
            jfail(&j, "trailing bytes after the value");
            fl_json_free(v);
            return NULL;
        }
    }
    return v;
}

void fl_json_free(struct fl_json *v)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        fl_json_free(v->items[i]);
        if (v->keys) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const struct fl_json *fl_json_get(const struct fl_json *obj, const char *key)
{
    if (!obj || obj->type != FL_JSON_OBJ) {
        return NULL;
    }
    for (size_t i = 0; i < obj->n; i++) {
        if (!strcmp(obj->keys[i], key)) {
            return obj->items[i];
        }
    }
    return NULL;
}

const char *fl_json_get_str(const struct fl_json *obj, const char *key)
{
    const struct fl_json *v = fl_json_get(obj, key);
    return v && v->type == FL_JSON_STR ? v->str : NULL;
}

bool fl_json_i64(const struct fl_json *obj, const char *key, int64_t *out)
{
    const struct fl_json *v = fl_json_get(obj, key);
    if (!v || v->type != FL_JSON_NUM || strpbrk(v->str, ".eE")) {
        return false;
    }
    errno = 0;
    long long x = strtoll(v->str, NULL, 10);
    if (errno) {
        return false;
    }
    *out = x;
    return true;
}

bool fl_json_u64(const struct fl_json *obj, const char *key, uint64_t *out)
{
    const struct fl_json *v = fl_json_get(obj, key);
    if (!v || v->type != FL_JSON_NUM || strpbrk(v->str, ".eE-")) {
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(v->str, NULL, 10);
    if (errno) {
        return false;
    }
    *out = x;
    return true;
}
