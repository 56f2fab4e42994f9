/* A small strict JSON reader (runner/json.h): recursive descent over a
 * byte range, every error naming its offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner/json.h"

#define MAX_DEPTH 64

struct parser {
    const char *s;
    size_t size, pos;
    struct fl_error **errp;
    bool failed;
};

static bool fail(struct parser *p, const char *what)
{
    if (!p->failed) {
        fl_error_setf(p->errp, EPROTO, "invalid JSON at byte %zu: %s", p->pos, what);
        p->failed = true;
    }
    return false;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->size && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) {
        p->pos++;
    }
}

static bool literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->size - p->pos < n || memcmp(p->s + p->pos, word, n)) {
        return fail(p, "unexpected characters");
    }
    p->pos += n;
    return true;
}

static bool hex4(struct parser *p, uint32_t *out)
{
    if (p->size - p->pos < 4) {
        return fail(p, "a \\u escape needs 4 hex digits");
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return fail(p, "a \\u escape needs 4 hex digits");
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

/* At the opening quote; a string without NUL bytes (\u0000 is refused:
 * the text is used as a C string). */
static bool string(struct parser *p, char **out)
{
    struct fl_buf b = {0};
    p->pos++;
    for (;;) {
        if (p->pos >= p->size) {
            fl_buf_free(&b);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            fl_buf_free(&b);
            return fail(p, "a control character in a string");
        }
        if (c != '\\') {
            uint32_t cp;
            size_t n = fl_utf8_decode(p->s + p->pos, p->size - p->pos, &cp);
            if (cp == 0xFFFD && (n != 3 || memcmp(p->s + p->pos, "\xef\xbf\xbd", 3))) {
                fl_buf_free(&b);
                return fail(p, "invalid UTF-8 in a string");
            }
            fl_buf_append(&b, p->s + p->pos, n);
            p->pos += n;
            continue;
        }
        p->pos++;
        char e = p->pos < p->size ? p->s[p->pos++] : '\0';
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            fl_buf_append(&b, to + (k - from), 1);
            continue;
        }
        uint32_t cp;
        if (e != 'u' || !hex4(p, &cp)) {
            fl_buf_free(&b);
            return fail(p, "an unknown escape in a string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (p->size - p->pos < 2 || memcmp(p->s + p->pos, "\\u", 2)) {
                fl_buf_free(&b);
                return fail(p, "a lone surrogate in a string");
            }
            p->pos += 2;
            if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                fl_buf_free(&b);
                return fail(p, "a lone surrogate in a string");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            fl_buf_free(&b);
            return fail(p, cp ? "a lone surrogate in a string" : "a NUL character in a string");
        }
        fl_utf8_put(&b, cp);
    }
    *out = b.data ? fl_buf_steal(&b) : fl_xstrdup("");
    return true;
}

static bool number(struct parser *p, char **out)
{
    size_t start = p->pos;
    const char *s = p->s;
    if (p->pos < p->size && s[p->pos] == '-') {
        p->pos++;
    }
    size_t digits = p->pos;
    while (p->pos < p->size && s[p->pos] >= '0' && s[p->pos] <= '9') {
        p->pos++;
    }
    if (p->pos == digits || (s[digits] == '0' && p->pos - digits > 1)) {
        return fail(p, "a malformed number");
    }
    if (p->pos < p->size && s[p->pos] == '.') {
        size_t f = ++p->pos;
        while (p->pos < p->size && s[p->pos] >= '0' && s[p->pos] <= '9') {
            p->pos++;
        }
        if (p->pos == f) {
            return fail(p, "a malformed number");
        }
    }
    if (p->pos < p->size && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->size && (s[p->pos] == '+' || s[p->pos] == '-')) {
            p->pos++;
        }
        size_t e = p->pos;
        while (p->pos < p->size && s[p->pos] >= '0' && s[p->pos] <= '9') {
            p->pos++;
        }
        if (p->pos == e) {
            return fail(p, "a malformed number");
        }
    }
    *out = fl_xasprintf("%.*s", (int)(p->pos - start), s + start);
    return true;
}

static bool value(struct parser *p, struct rn_json *v, int depth);

static bool items(struct parser *p, struct rn_json *v, int depth, bool object)
{
    char close = object ? '}' : ']';
    size_t alloc = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->size && p->s[p->pos] == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        if (v->n == alloc) {
            alloc = alloc ? alloc * 2 : 8;
            v->items = fl_xrealloc(v->items, alloc * sizeof *v->items);
            if (object) {
                v->keys = fl_xrealloc(v->keys, alloc * sizeof *v->keys);
            }
        }
        struct rn_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        skip_ws(p);
        if (object) {
            if (p->pos >= p->size || p->s[p->pos] != '"') {
                return fail(p, "an object key must be a string");
            }
            if (!string(p, &v->keys[v->n])) {
                return false;
            }
            skip_ws(p);
            if (p->pos >= p->size || p->s[p->pos] != ':') {
                free(v->keys[v->n]);
                return fail(p, "a ':' after an object key");
            }
            p->pos++;
        }
        v->n++;
        if (!value(p, item, depth + 1)) {
            return false;
        }
        skip_ws(p);
        if (p->pos < p->size && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->size && p->s[p->pos] == close) {
            p->pos++;
            return true;
        }
        return fail(p, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static bool value(struct parser *p, struct rn_json *v, int depth)
{
    if (depth >= MAX_DEPTH) {
        return fail(p, "nested too deep");
    }
    skip_ws(p);
    if (p->pos >= p->size) {
        return fail(p, "a value expected");
    }
    switch (p->s[p->pos]) {
    case '{':
        v->type = RN_JSON_OBJECT;
        return items(p, v, depth, true);
    case '[':
        v->type = RN_JSON_ARRAY;
        return items(p, v, depth, false);
    case '"':
        v->type = RN_JSON_STRING;
        return string(p, &v->text);
    case 't':
        v->type = RN_JSON_BOOL;
        v->boolean = true;
        return literal(p, "true");
    case 'f':
        v->type = RN_JSON_BOOL;
        return literal(p, "false");
    case 'n':
        v->type = RN_JSON_NULL;
        return literal(p, "null");
    default:
        v->type = RN_JSON_NUMBER;
        return number(p, &v->text);
    }
}

static void clear(struct rn_json *v)
{
    for (size_t i = 0; i < v->n; i++) {
        clear(&v->items[i]);
        if (v->keys) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->text);
}

void rn_json_free(struct rn_json *json)
{
    if (json) {
        clear(json);
        free(json);
    }
}

struct rn_json *rn_json_parse(const char *text, size_t size, struct fl_error **errp)
{
    struct parser p = {.s = text, .size = size, .errp = errp};
    struct rn_json *v = fl_xcalloc(1, sizeof *v);
    if (value(&p, v, 0)) {
        skip_ws(&p);
        if (p.pos == p.size) {
            return v;
        }
        fail(&p, "text after the value");
    }
    rn_json_free(v);
    return NULL;
}

const struct rn_json *rn_json_get(const struct rn_json *json, const char *key)
{
    if (!json || json->type != RN_JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < json->n; i++) {
        if (!strcmp(json->keys[i], key)) {
            return &json->items[i];
        }
    }
    return NULL;
}

const char *rn_json_str(const struct rn_json *json, const char *key)
{
    const struct rn_json *v = rn_json_get(json, key);
    return v && v->type == RN_JSON_STRING ? v->text : NULL;
}

bool rn_json_i64(const struct rn_json *json, const char *key, int64_t *out)
{
    const struct rn_json *v = rn_json_get(json, key);
    if (!v || v->type != RN_JSON_NUMBER || strpbrk(v->text, ".eE")) {
        return false;
    }
    errno = 0;
    long long x = strtoll(v->text, NULL, 10);
    if (errno) {
        return false;
    }
    *out = x;
    return true;
}

bool rn_json_u64(const struct rn_json *json, const char *key, uint64_t *out)
{
    const struct rn_json *v = rn_json_get(json, key);
    if (!v || v->type != RN_JSON_NUMBER || strpbrk(v->text, ".eE-")) {
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(v->text, NULL, 10);
    if (errno) {
        return false;
    }
    *out = x;
    return true;
}
