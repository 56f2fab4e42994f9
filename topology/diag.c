/* Diagnostics: every error with its place, its key path and its value. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

static void add_diag(struct tc *c, uint32_t line, uint32_t col, char *msg)
{
    if (c->n_diags >= TC_MAX_ERRORS) {
        c->n_dropped++;
        free(msg);
        return;
    }
    /* The same message at the same place twice (a node shared through an
     * alias) is reported once. */
    for (size_t i = 0; i < c->n_diags; i++) {
        if (c->diags[i].line == line && c->diags[i].col == col && !strcmp(c->diags[i].msg, msg)) {
            free(msg);
            return;
        }
    }
    c->diags = fl_xgrow(c->diags, &c->alloc_diags, c->n_diags + 1, sizeof(*c->diags));
    struct tc_diag *d = &c->diags[c->n_diags++];
    d->line = line;
    d->col = col;
    d->order = c->order++;
    d->msg = msg;
}

static void verr(struct tc *c, uint32_t line, uint32_t col, const char *prefix, const char *fmt,
                 va_list ap)
{
    struct fl_buf b = {0};
    if (c->path.size) {
        fl_buf_printf(&b, "%s: ", c->path.data);
    }
    if (prefix) {
        fl_buf_puts(&b, prefix);
    }
    char *m = fl_xvasprintf(fmt, ap);
    fl_buf_puts(&b, m);
    free(m);
    add_diag(c, line, col, fl_buf_steal(&b));
}

void tc_err_loc(struct tc *c, uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, line, col, NULL, fmt, ap);
    va_end(ap);
}

void tc_err(struct tc *c, const struct ty_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, at ? at->line : 0, at ? at->col : 0, NULL, fmt, ap);
    va_end(ap);
}

/* The length of the UTF-8 bidirectional control at s (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069), or 0: they reorder what a
 * terminal shows after them, so messages show them as \uXXXX. */
static size_t bidi_control(const char *s, size_t left, unsigned *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (left >= 2 && u[0] == 0xd8 && u[1] == 0x9c) {
        *cp = 0x061c;
        return 2;
    }
    if (left >= 3 && u[0] == 0xe2 && (u[1] == 0x80 || u[1] == 0x81)) {
        unsigned c = 0x2000 | ((unsigned)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
        if (c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
            (c >= 0x2066 && c <= 0x2069)) {
            *cp = c;
            return 3;
        }
    }
    return 0;
}

void tc_quote(struct fl_buf *b, const char *s, size_t len)
{
    const size_t max = 60;
    fl_buf_puts(b, "'");
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        unsigned cp;
        size_t bidi = bidi_control(&s[i], len - i, &cp);
        if (bidi) {
            fl_buf_printf(b, "\\u%04x", cp);
            i += bidi - 1;
        } else if (ch == '\n') {
            fl_buf_puts(b, "\\n");
        } else if (ch == '\t') {
            fl_buf_puts(b, "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            fl_buf_printf(b, "\\x%02x", ch);
        } else {
            fl_buf_append(b, &s[i], 1);
        }
    }
    if (len > max) {
        fl_buf_puts(b, "...");
    }
    fl_buf_puts(b, "'");
}

char *tc_describe(const struct ty_node *n)
{
    struct fl_buf b = {0};
    if (!n) {
        fl_buf_puts(&b, "nothing");
    } else if (n->type == TY_SCALAR) {
        if (ty_is_null(n)) {
            fl_buf_puts(&b, "an empty value");
        } else {
            tc_quote(&b, n->str, n->len);
        }
    } else if (n->type == TY_SEQ) {
        fl_buf_puts(&b, "a list");
    } else {
        fl_buf_puts(&b, "a mapping");
    }
    return fl_buf_steal(&b);
}

void tc_err_val(struct tc *c, const struct ty_node *at, const char *fmt, ...)
{
    char *d = tc_describe(at);
    char *prefix = fl_xasprintf("%s ", d);
    free(d);
    va_list ap;
    va_start(ap, fmt);
    verr(c, at ? at->line : 0, at ? at->col : 0, prefix, fmt, ap);
    va_end(ap);
    free(prefix);
}

char *tc_see(const struct tc *c, struct topo_loc loc)
{
    if (!loc.line) {
        return fl_xstrdup("(implicit)");
    }
    return fl_xasprintf("%s:%u:%u", c->file, loc.line, loc.col);
}

/* Path segments: plain keys are joined with '.', keys that are not plain
 * identifiers are bracketed and quoted: links["n1 -> n2"].delay. */
static bool plain_key(const char *s, size_t len)
{
    if (!len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '_' && ch != '-') {
            return false;
        }
    }
    return true;
}

static size_t path_key_len(struct tc *c, const char *key, size_t len)
{
    size_t mark = c->path.size;
    if (plain_key(key, len)) {
        if (c->path.size) {
            fl_buf_puts(&c->path, ".");
        }
        /* No name is this long: a hostile key is cut, not echoed whole. */
        fl_buf_append(&c->path, key, len > 128 ? 128 : len);
        if (len > 128) {
            fl_buf_puts(&c->path, "...");
        }
    } else {
        fl_buf_puts(&c->path, "[\"");
        for (size_t i = 0; i < len && i < 60; i++) {
            unsigned char ch = (unsigned char)key[i];
            unsigned cp;
            size_t bidi = bidi_control(&key[i], len - i, &cp);
            if (bidi) {
                fl_buf_printf(&c->path, "\\u%04x", cp);
                i += bidi - 1;
            } else if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') {
                fl_buf_printf(&c->path, "\\x%02x", ch);
            } else {
                fl_buf_append(&c->path, &key[i], 1);
            }
        }
        fl_buf_puts(&c->path, len > 60 ? "...\"]" : "\"]");
    }
    return mark;
}

size_t tc_path_key(struct tc *c, const char *key)
{
    return path_key_len(c, key, strlen(key));
}

bool tc_enter_section(struct tc *c, const struct ty_node *n, const char *key, enum ty_type want,
                      const char *what, size_t *mark)
{
    *mark = tc_path_key(c, key);
    if (n->type == want) {
        return true;
    }
    tc_err_val(c, n, "is not %s", what);
    tc_path_pop(c, *mark);
    return false;
}

size_t tc_path_keyn(struct tc *c, const struct ty_node *key)
{
    if (key->type != TY_SCALAR) {
        return path_key_len(c, "?", 1);
    }
    return path_key_len(c, key->str, key->len);
}

size_t tc_path_index(struct tc *c, size_t index)
{
    size_t mark = c->path.size;
    fl_buf_printf(&c->path, "[%zu]", index);
    return mark;
}

void tc_path_pop(struct tc *c, size_t mark)
{
    if (c->path.data && mark <= c->path.size) {
        c->path.size = mark;
        c->path.data[mark] = '\0';
    }
}

const char *tc_suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t wl = strlen(word);
    if (wl > 64) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) {
            continue;
        }
        size_t d = fl_edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t limit = wl / 3 > 2 ? wl / 3 : 2;
    if (best && best_d <= limit && best_d < strlen(best)) {
        return best;
    }
    return NULL;
}

void tc_list_names(struct fl_buf *b, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fl_buf_printf(b, "%s%s", i ? ", " : "", names[i]);
    }
}

bool tc_check_map(struct tc *c, const struct ty_node *n, const char *const *allowed,
                  const char *what)
{
    return tc_check_map_homes(c, n, allowed, what, NULL);
}

/* Whether the scalar key k is the word s. */
static bool key_is(const struct ty_node *k, const char *s)
{
    return strlen(s) == k->len && !memcmp(s, k->str, k->len);
}

/* Words people use for a key that has another name here; offered as
 * "did you mean" when the other name is allowed where they wrote it. */
static const struct {
    const char *word, *key;
} key_synonyms[] = {
    {"on", "node"},      {"host", "node"},  {"cmd", "command"},  {"run", "command"},
    {"exec", "command"}, {"time", "at"},    {"when", "at"},      {"expect", "exit"},
    {"mem", "memory"},   {"ram", "memory"}, {"net", "networks"}, {"nics", "networks"},
};

static const char *key_synonym(const struct ty_node *k, const char *const *allowed, size_t count)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(key_synonyms); i++) {
        if (!key_is(k, key_synonyms[i].word)) {
            continue;
        }
        for (size_t j = 0; j < count; j++) {
            if (!strcmp(allowed[j], key_synonyms[i].key)) {
                return allowed[j];
            }
        }
    }
    return NULL;
}

static const char *key_home(const struct tc_key_home *homes, const struct ty_node *k)
{
    for (size_t i = 0; homes && homes[i].key; i++) {
        if (key_is(k, homes[i].key)) {
            return homes[i].home;
        }
    }
    return NULL;
}

bool tc_check_map_homes(struct tc *c, const struct ty_node *n, const char *const *allowed,
                        const char *what, const struct tc_key_home *homes)
{
    if (!n || n->type != TY_MAP) {
        struct fl_buf keys = {0};
        size_t count = 0;
        while (allowed[count]) {
            count++;
        }
        tc_list_names(&keys, allowed, count);
        tc_err_val(c, n, "is not a mapping: %s is a mapping with keys %s", what,
                   keys.data ? keys.data : "");
        fl_buf_free(&keys);
        return false;
    }
    size_t count = 0;
    while (allowed[count]) {
        count++;
    }
    struct tc_keyset seen = {0}; /* key -> its first pair */
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key;
        if (k->type != TY_SCALAR) {
            tc_err(c, k, "a key must be a plain word, not %s",
                   k->type == TY_SEQ ? "a list" : "a mapping");
            continue;
        }
        /* Written twice? */
        size_t first = tc_keyset_add(&seen, k->str, k->len, i);
        if (first != i) {
            char *see = tc_see(c, tc_loc(n->pairs[first].key));
            size_t m = tc_path_keyn(c, k);
            struct fl_buf q = {0};
            tc_quote(&q, k->str, k->len);
            tc_err(c, k, "key %s is given twice (first at %s)", q.data, see);
            fl_buf_free(&q);
            tc_path_pop(c, m);
            free(see);
        }
        bool ok = false;
        for (size_t j = 0; j < count && !ok; j++) {
            ok = key_is(k, allowed[j]);
        }
        if (ok) {
            continue;
        }
        if (k->len > 2 && !memcmp(k->str, "x-", 2)) {
            continue; /* extension fields, for YAML anchors (as in compose files) */
        }
        struct fl_buf b = {0};
        tc_quote(&b, k->str, k->len);
        const char *sugg = key_synonym(k, allowed, count);
        if (!sugg) {
            sugg = tc_suggest(k->str, allowed, count);
        }
        size_t m = tc_path_keyn(c, k);
        struct fl_buf valid = {0};
        tc_list_names(&valid, allowed, count);
        /* "what" may carry an example in parentheses for the not-a-mapping
         * message; here the noun is enough. */
        const char *paren = strstr(what, " (");
        int wlen = paren ? (int)(paren - what) : (int)strlen(what);
        const char *home = key_home(homes, k);
        if (home) {
            tc_err(c, k,
                   "unknown key %s in %.*s; it belongs under '%s:' (%s: {%s: ...}) (valid: %s)",
                   b.data, wlen, what, home, home, k->str, valid.data ? valid.data : "");
        } else if (sugg) {
            tc_err(c, k, "unknown key %s in %.*s; did you mean '%s'? (valid: %s)", b.data, wlen,
                   what, sugg, valid.data ? valid.data : "");
        } else {
            tc_err(c, k, "unknown key %s in %.*s (valid: %s)", b.data, wlen, what,
                   valid.data ? valid.data : "");
        }
        tc_path_pop(c, m);
        fl_buf_free(&b);
        fl_buf_free(&valid);
    }
    tc_keyset_free(&seen);
    return true;
}

bool tc_defined_twice(struct tc *c, const struct tc_keyset *names, const struct ty_node *k)
{
    size_t first = tc_keyset_find(names, k->str, k->len);
    if (first == TC_KEYSET_NONE) {
        return false;
    }
    char *see = tc_see(c, tc_loc((const struct ty_node *)(uintptr_t)first));
    tc_err_val(c, k, "is defined twice (first at %s)", see);
    free(see);
    return true;
}

void tc_define(struct tc_keyset *names, const struct ty_node *k)
{
    tc_keyset_add(names, k->str, k->len, (size_t)(uintptr_t)k);
}
