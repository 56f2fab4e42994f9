/* Value parsers: scalars to typed values, with errors that quote the value
 * and say what is valid.  Human units come from impair/. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "topology/internal.h"

/* A non-null scalar without NUL bytes. */
static bool scalar(struct tc *c, const struct ty_node *n, const char *what)
{
    if (!n || n->type != TY_SCALAR || ty_is_null(n)) {
        tc_err_val(c, n, "is not %s", what);
        return false;
    }
    if (strlen(n->str) != n->len) {
        tc_err_val(c, n, "contains a NUL byte; expected %s", what);
        return false;
    }
    return true;
}

bool tc_string(struct tc *c, const struct ty_node *n, const char **out)
{
    if (!scalar(c, n, "a text value")) {
        return false;
    }
    *out = n->str;
    return true;
}

/* impair/'s messages quote the whole value: a hostile one (megabytes of
 * digits) is shown cut, as tc_quote shows values, and so is the rest. */
static void impair_err(struct tc *c, const struct ty_node *n, struct fl_error *e)
{
    const char *msg = e ? e->msg : "invalid value";
    struct fl_buf b = {0};
    size_t vlen = n->len;
    if (vlen > 60 && strlen(msg) >= vlen + 2 && msg[0] == '\'' && !memcmp(msg + 1, n->str, vlen) &&
        msg[vlen + 1] == '\'') {
        tc_quote(&b, n->str, vlen);
        msg += vlen + 2;
    }
    size_t rest = strlen(msg);
    if (rest > 400) {
        rest = 400;
        while (rest > 0 && ((unsigned char)msg[rest] & 0xc0) == 0x80) {
            rest--; /* not inside a UTF-8 sequence */
        }
    }
    fl_buf_append(&b, msg, rest);
    if (rest < strlen(msg)) {
        fl_buf_puts(&b, "...");
    }
    tc_err(c, n, "%s", b.data ? b.data : "");
    fl_buf_free(&b);
    fl_error_free(e);
}

bool tc_duration(struct tc *c, const struct ty_node *n, int64_t *out)
{
    if (!scalar(c, n, "a duration (e.g. 250ms, 10s, 1m)")) {
        return false;
    }
    struct fl_error *e = NULL;
    int64_t v;
    if (!impair_parse_duration(n->str, &v, &e)) {
        impair_err(c, n, e);
        return false;
    }
    *out = v;
    return true;
}

bool tc_signed_duration(struct tc *c, const struct ty_node *n, int64_t *out)
{
    if (!scalar(c, n, "a signed duration (e.g. +5s, -500ms)")) {
        return false;
    }
    const char *s = n->str;
    int sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    struct fl_error *e = NULL;
    int64_t v;
    if (!impair_parse_duration(s, &v, &e)) {
        fl_error_free(e);
        tc_err_val(c, n,
                   "is not a signed duration: expected an optional + or - and a number "
                   "followed by ns, us, ms, s, m or h (e.g. +5s, -500ms)");
        return false;
    }
    *out = sign * v;
    return true;
}

static bool is_unitless_number(const char *s, size_t len)
{
    if (!len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]) && s[i] != '.') {
            return false;
        }
    }
    return true;
}

bool tc_duration_range(struct tc *c, const struct ty_node *n, int64_t *min, int64_t *max)
{
    static const char what[] =
        "a duration or a range of durations (e.g. 15s, 10s-20s, 10-20s, 1m..2m)";
    if (!scalar(c, n, what)) {
        return false;
    }
    const char *s = n->str;
    const char *sep = strstr(s, "..");
    size_t seplen = 2;
    if (!sep) {
        sep = strchr(s + (s[0] ? 1 : 0), '-');
        seplen = 1;
    }
    struct fl_error *e = NULL;
    if (!sep) {
        int64_t v;
        if (!impair_parse_duration(s, &v, &e)) {
            fl_error_free(e);
            tc_err_val(c, n, "is not %s", what);
            return false;
        }
        *min = *max = v;
        return true;
    }
    char *a = fl_xstrndup(s, (size_t)(sep - s));
    const char *bstr = sep + seplen;
    /* "10-20s": the unit of the second bound applies to the first. */
    if (is_unitless_number(a, strlen(a)) && strcmp(a, "0")) {
        size_t i = 0;
        while (bstr[i] && (isdigit((unsigned char)bstr[i]) || bstr[i] == '.')) {
            i++;
        }
        char *a2 = fl_xasprintf("%s%s", a, bstr + i);
        free(a);
        a = a2;
    }
    int64_t lo, hi;
    bool ok = impair_parse_duration(a, &lo, &e);
    fl_error_free(e);
    e = NULL;
    ok = ok && impair_parse_duration(bstr, &hi, &e);
    fl_error_free(e);
    free(a);
    if (!ok) {
        tc_err_val(c, n, "is not %s", what);
        return false;
    }
    if (lo > hi) {
        tc_err_val(c, n, "is not a range: its lower bound is above its upper bound");
        return false;
    }
    *min = lo;
    *max = hi;
    return true;
}

bool tc_prob(struct tc *c, const struct ty_node *n, impair_prob *out)
{
    if (!scalar(c, n, "a probability (e.g. 1%, 0.5%, 100%)")) {
        return false;
    }
    struct fl_error *e = NULL;
    impair_prob p;
    if (!impair_parse_prob(n->str, &p, &e)) {
        impair_err(c, n, e);
        return false;
    }
    *out = p;
    return true;
}

bool tc_size(struct tc *c, const struct ty_node *n, uint64_t *out)
{
    if (!scalar(c, n, "a size (e.g. 1500, 64KiB, 1GiB)")) {
        return false;
    }
    struct fl_error *e = NULL;
    uint64_t v;
    if (!impair_parse_size(n->str, &v, &e)) {
        impair_err(c, n, e);
        return false;
    }
    *out = v;
    return true;
}

bool tc_rate(struct tc *c, const struct ty_node *n, uint64_t *out)
{
    if (!scalar(c, n, "a rate (e.g. 100kbit, 10mbit, 1gbit)")) {
        return false;
    }
    struct fl_error *e = NULL;
    uint64_t v;
    if (!impair_parse_rate(n->str, &v, &e)) {
        impair_err(c, n, e);
        return false;
    }
    *out = v;
    return true;
}

bool tc_uint(struct tc *c, const struct ty_node *n, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!scalar(c, n, "a whole number")) {
        return false;
    }
    const char *s = n->str;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s[2]) {
        base = 16;
        s += 2;
    }
    bool ok = *s != '\0';
    for (const char *p = s; *p && ok; p++) {
        ok = base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p);
    }
    errno = 0;
    unsigned long long v = ok ? strtoull(s, NULL, base) : 0;
    if (!ok || errno == ERANGE || v < min || v > max) {
        tc_err_val(c, n, "is not a whole number in %llu..%llu", (unsigned long long)min,
                   (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool tc_int(struct tc *c, const struct ty_node *n, int64_t min, int64_t max, int64_t *out)
{
    if (!scalar(c, n, "a whole number")) {
        return false;
    }
    const char *s = n->str;
    bool ok = *s != '\0';
    const char *p = s;
    if (*p == '-' || *p == '+') {
        p++;
    }
    ok = ok && *p;
    for (; *p && ok; p++) {
        ok = isdigit((unsigned char)*p);
    }
    errno = 0;
    long long v = ok ? strtoll(s, NULL, 10) : 0;
    if (!ok || errno == ERANGE || v < min || v > max) {
        tc_err_val(c, n, "is not a whole number in %lld..%lld", (long long)min, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool tc_bool_word(const struct ty_node *n, bool *out)
{
    static const char *const t[] = {"true", "yes", "on", "True", "Yes", "On", "TRUE", "YES", "ON"};
    static const char *const f[] = {"false", "no",    "off", "False", "No",
                                    "Off",   "FALSE", "NO",  "OFF"};
    if (n && n->type == TY_SCALAR && !n->quoted) {
        for (size_t i = 0; i < FL_ARRAY_LEN(t); i++) {
            if (!strcmp(n->str, t[i])) {
                *out = true;
                return true;
            }
            if (!strcmp(n->str, f[i])) {
                *out = false;
                return true;
            }
        }
    }
    return false;
}

bool tc_bool(struct tc *c, const struct ty_node *n, bool *out)
{
    if (tc_bool_word(n, out)) {
        return true;
    }
    tc_err_val(c, n, "is not a boolean (valid: true, false)");
    return false;
}

bool tc_enum(struct tc *c, const struct ty_node *n, const char *const *names, size_t count,
             int *out)
{
    struct fl_buf valid = {0};
    tc_list_names(&valid, names, count);
    if (n && n->type == TY_SCALAR && !ty_is_null(n)) {
        for (size_t i = 0; i < count; i++) {
            if (!strcmp(n->str, names[i])) {
                *out = (int)i;
                fl_buf_free(&valid);
                return true;
            }
        }
        const char *sugg = tc_suggest(n->str, names, count);
        if (sugg) {
            tc_err_val(c, n, "is not valid here; did you mean '%s'? (valid: %s)", sugg, valid.data);
            fl_buf_free(&valid);
            return false;
        }
    }
    tc_err_val(c, n, "is not valid here (valid: %s)", valid.data ? valid.data : "");
    fl_buf_free(&valid);
    return false;
}

bool tc_name(struct tc *c, const struct ty_node *n, size_t max, const char *what)
{
    if (!scalar(c, n, what)) {
        return false;
    }
    if (!fl_name_valid(n->str, max)) {
        tc_err_val(c, n, "is not a valid %s: use " FL_NAME_RULE, what, max);
        return false;
    }
    return true;
}

static int ref(struct tc *c, const struct ty_node *n, const char *what, const char *plural,
               const char *const *names, size_t count)
{
    if (!scalar(c, n, what)) {
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(n->str, names[i])) {
            return (int)i;
        }
    }
    struct fl_buf valid = {0};
    tc_list_names(&valid, names, count > 12 ? 12 : count);
    if (count > 12) {
        fl_buf_printf(&valid, ", ... (%zu in all)", count);
    }
    const char *sugg = tc_suggest(n->str, names, count);
    if (!count) {
        tc_err_val(c, n, "is not %s: the scenario defines no %s", what, plural);
    } else if (sugg) {
        tc_err_val(c, n, "is not %s; did you mean '%s'? (valid: %s)", what, sugg, valid.data);
    } else {
        tc_err_val(c, n, "is not %s (valid: %s)", what, valid.data);
    }
    fl_buf_free(&valid);
    return -1;
}

static const char **node_names(const struct tc *c)
{
    const char **v = fl_xcalloc(c->s->n_nodes + 1, sizeof(*v));
    for (size_t i = 0; i < c->s->n_nodes; i++) {
        v[i] = c->s->nodes[i].name;
    }
    return v;
}

int tc_node_ref(struct tc *c, const struct ty_node *n)
{
    const char **names = node_names(c);
    int r = ref(c, n, "a node", "nodes", names, c->s->n_nodes);
    free(names);
    return r;
}

int tc_network_ref(struct tc *c, const struct ty_node *n)
{
    const char **names = fl_xcalloc(c->s->n_networks + 1, sizeof(*names));
    for (size_t i = 0; i < c->s->n_networks; i++) {
        names[i] = c->s->networks[i].name;
    }
    int r = ref(c, n, "a network", "networks", names, c->s->n_networks);
    free(names);
    return r;
}

uint32_t *tc_node_list(struct tc *c, const struct ty_node *n, size_t *count)
{
    *count = 0;
    if (n && n->type == TY_SCALAR && !ty_is_null(n)) {
        int r = tc_node_ref(c, n);
        if (r < 0) {
            return NULL;
        }
        uint32_t *v = fl_xmalloc(sizeof(*v));
        v[0] = (uint32_t)r;
        *count = 1;
        return v;
    }
    if (!n || n->type != TY_SEQ || !n->n_items) {
        tc_err_val(c, n, "is not a node or a non-empty list of nodes (e.g. n1 or [n1, n2])");
        return NULL;
    }
    uint32_t *v = fl_xcalloc(n->n_items, sizeof(*v));
    bool ok = true;
    for (size_t i = 0; i < n->n_items; i++) {
        size_t m = tc_path_index(c, i);
        int r = tc_node_ref(c, n->items[i]);
        if (r < 0) {
            ok = false;
        } else {
            for (size_t j = 0; j < *count; j++) {
                if (v[j] == (uint32_t)r) {
                    char *see = tc_see(c, tc_loc(n->items[j]));
                    tc_err_val(c, n->items[i], "is listed twice (first at %s)", see);
                    free(see);
                    ok = false;
                    break;
                }
            }
            v[(*count)++] = (uint32_t)r;
        }
        tc_path_pop(c, m);
    }
    if (!ok) {
        free(v);
        *count = 0;
        return NULL;
    }
    return v;
}

char *tc_host_path(struct tc *c, const struct ty_node *n, const char *s, bool dir_ok)
{
    char *path = s[0] == '/' ? fl_xstrdup(s) : fl_xasprintf("%s/%s", c->base_dir, s);
    struct stat st;
    if (stat(path, &st) != 0) {
        tc_err_val(c, n, "does not exist on this machine (looked for %s)", path);
        free(path);
        return NULL;
    }
    if (!dir_ok && !S_ISREG(st.st_mode)) {
        tc_err_val(c, n, "is not a regular file (%s)", path);
        free(path);
        return NULL;
    }
    /* Canonical form, so the model (and image cache keys) do not depend on
     * how the path was spelled. */
    char *real = realpath(path, NULL);
    if (real) {
        free(path);
        return real;
    }
    return path;
}
