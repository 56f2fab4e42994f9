/*
 * Delay distributions: netem-style quantile tables and the sampler.
 *
 * A table lists equally likely values of X (in units of the jitter); a
 * draw picks one entry:  delay = latency + jitter * table[u * len / 2^32].
 * netem ships its tables as files made by iproute2's maketable; here the
 * built-in ones are computed once from the quantile functions:
 *
 *   normal        x_i = Phi^-1((i + 0.5) / N)
 *   pareto        x_i = (1 - (i + 0.5) / N)^(-1/3)          (shape 3, as netem)
 *   paretonormal  0.25 N + 0.75 Pareto (as netem), from a 256 x 256 grid
 *                 of both quantile sets, sorted and averaged in blocks
 *
 * then shifted and scaled so the N entries have mean exactly 0 and
 * standard deviation exactly 1 (before Q16 rounding): the sampled delay's
 * mean is the latency and its standard deviation the jitter.
 *
 * Correlation: a Gaussian copula (see impair.h) keeps the distribution and
 * makes successive draws sticky.  All values are Q16 fixed point so that
 * the per-frame arithmetic is integer and bit-for-bit reproducible.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

const char *impair_dist_name(enum impair_dist dist)
{
    static const char *const names[] = {
#define IMPAIR_DIST_NAME(name, str) str,
        IMPAIR_DISTS(IMPAIR_DIST_NAME)
#undef IMPAIR_DIST_NAME
    };
    return (unsigned)dist < FL_ARRAY_LEN(names) ? names[dist] : "?";
}

bool impair_dist_from_name(const char *name, enum impair_dist *dist)
{
    for (int i = 0; i < IMPAIR_DIST__COUNT; i++) {
        if (!strcmp(name, impair_dist_name((enum impair_dist)i))) {
            *dist = (enum impair_dist)i;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Built-in tables                                                     */
/* ------------------------------------------------------------------ */

static double normal_cdf(double x)
{
    return 0.5 * erfc(-x * M_SQRT1_2);
}

/* Inverse of the standard normal CDF: Acklam's rational approximation,
 * polished with two Halley steps against erfc (error ~1e-15). */
static double normal_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double plow = 0.02425;
    double x;
    if (p < plow) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - plow) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        double q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    for (int i = 0; i < 2; i++) {
        double e = normal_cdf(x) - p;
        double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
        x = x - u / (1 + x * u / 2);
    }
    return x;
}

static double pareto_quantile(double p)
{
    return pow(1 - p, -1.0 / 3.0);
}

/* Shift and scale v[0..n) to mean 0, stddev 1. */
static void standardize(double *v, size_t n)
{
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
    }
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) {
        sq += (v[i] - mean) * (v[i] - mean);
    }
    double sd = sqrt(sq / (double)n);
    for (size_t i = 0; i < n; i++) {
        v[i] = (v[i] - mean) / sd;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int32_t builtin_tables[3][IMPAIR_BUILTIN_LEN];
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void to_q16(int32_t *out, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (int32_t)lrint(v[i] * IMPAIR_Q16);
    }
}

static void build_builtin_tables(void)
{
    enum { N = IMPAIR_BUILTIN_LEN, G = 256 };
    double *v = fl_xmalloc(N * sizeof *v);

    for (int i = 0; i < N; i++) {
        v[i] = normal_quantile((i + 0.5) / N);
    }
    standardize(v, N);
    to_q16(builtin_tables[0], v, N);

    for (int i = 0; i < N; i++) {
        v[i] = pareto_quantile((i + 0.5) / N);
    }
    standardize(v, N);
    to_q16(builtin_tables[1], v, N);

    double zn[G], pn[G];
    for (int i = 0; i < G; i++) {
        zn[i] = normal_quantile((i + 0.5) / G);
        pn[i] = pareto_quantile((i + 0.5) / G);
    }
    standardize(zn, G);
    standardize(pn, G);
    double *grid = fl_xmalloc((size_t)G * G * sizeof *grid);
    for (int i = 0; i < G; i++) {
        for (int j = 0; j < G; j++) {
            grid[i * G + j] = 0.25 * zn[i] + 0.75 * pn[j];
        }
    }
    qsort(grid, (size_t)G * G, sizeof *grid, cmp_double);
    const int block = G * G / N;
    for (int k = 0; k < N; k++) {
        double s = 0;
        for (int j = 0; j < block; j++) {
            s += grid[k * block + j];
        }
        v[k] = s / block;
    }
    standardize(v, N);
    to_q16(builtin_tables[2], v, N);

    free(grid);
    free(v);
}

const int32_t *impair_builtin_table(enum impair_dist dist)
{
    pthread_once(&builtin_once, build_builtin_tables);
    switch (dist) {
    case IMPAIR_DIST_NORMAL:
        return builtin_tables[0];
    case IMPAIR_DIST_PARETO:
        return builtin_tables[1];
    case IMPAIR_DIST_PARETONORMAL:
        return builtin_tables[2];
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* User tables                                                         */
/* ------------------------------------------------------------------ */

struct impair_dist_table {
    atomic_uint refs;
    char *name;
    size_t len;
    int32_t q16[];
};

#define TABLE_VALUE_MAX (32 * IMPAIR_DIST_SCALE)

struct impair_dist_table *impair_dist_table_create(const int32_t *values, size_t n,
                                                   const char *name, struct fl_error **errp)
{
    const char *label = name ? name : "table";
    if (n < 1 || n > IMPAIR_DIST_TABLE_MAX_LEN) {
        fl_error_setf(errp, EINVAL, "%s: a distribution table needs 1..%d values, not %zu", label,
                      IMPAIR_DIST_TABLE_MAX_LEN, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (values[i] > TABLE_VALUE_MAX || values[i] < -TABLE_VALUE_MAX) {
            fl_error_setf(errp, ERANGE,
                          "%s: value %zu (%d) is out of range: table values are "
                          "-%d..%d (jitter units x %d)",
                          label, i + 1, values[i], TABLE_VALUE_MAX, TABLE_VALUE_MAX,
                          IMPAIR_DIST_SCALE);
            return NULL;
        }
    }
    struct impair_dist_table *t = fl_xmalloc(sizeof *t + n * sizeof t->q16[0]);
    atomic_init(&t->refs, 1);
    t->name = fl_xstrdup(label);
    t->len = n;
    for (size_t i = 0; i < n; i++) {
        t->q16[i] = values[i] * (IMPAIR_Q16 / IMPAIR_DIST_SCALE);
    }
    return t;
}

struct impair_dist_table *impair_dist_table_parse(const char *text, const char *name,
                                                  struct fl_error **errp)
{
    const char *label = name ? name : "table";
    int32_t *values = NULL;
    size_t n = 0, alloc = 0;
    int line = 1;
    const char *p = text;
    while (*p) {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == ' ' || *p == '\t' || *p == '\r') {
            p++;
        } else if (*p == '#') {
            while (*p && *p != '\n') {
                p++;
            }
        } else {
            const char *start = p;
            while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '#') {
                p++;
            }
            char *word = fl_xstrndup(start, (size_t)(p - start));
            int64_t v;
            struct fl_error *err = NULL;
            if (!impair_parse_int(word, -TABLE_VALUE_MAX, TABLE_VALUE_MAX, &v, "table value",
                                  &err)) {
                fl_error_setf(errp, EINVAL, "%s:%d: %s", label, line, err->msg);
                fl_error_free(err);
                free(word);
                free(values);
                return NULL;
            }
            free(word);
            if (n == IMPAIR_DIST_TABLE_MAX_LEN) {
                fl_error_setf(errp, EINVAL, "%s:%d: more than %d values", label, line,
                              IMPAIR_DIST_TABLE_MAX_LEN);
                free(values);
                return NULL;
            }
            values = fl_xgrow(values, &alloc, n + 1, sizeof *values);
            values[n++] = (int32_t)v;
        }
    }
    if (n == 0) {
        fl_error_setf(errp, EINVAL, "%s: no values: a netem .dist table lists integers", label);
        return NULL;
    }
    struct impair_dist_table *t = impair_dist_table_create(values, n, label, errp);
    free(values);
    return t;
}

struct impair_dist_table *impair_dist_table_ref(struct impair_dist_table *table)
{
    if (table) {
        atomic_fetch_add(&table->refs, 1);
    }
    return table;
}

void impair_dist_table_unref(struct impair_dist_table *table)
{
    if (table && atomic_fetch_sub(&table->refs, 1) == 1) {
        free(table->name);
        free(table);
    }
}

const char *impair_dist_table_name(const struct impair_dist_table *table)
{
    return table->name;
}

size_t impair_dist_table_len(const struct impair_dist_table *table)
{
    return table->len;
}

const int32_t *impair_dist_table_q16(const struct impair_dist_table *table)
{
    return table->q16;
}

/* ------------------------------------------------------------------ */
/* Validation, state, sampling                                         */
/* ------------------------------------------------------------------ */

bool impair_delay_validate(const struct impair_delay *d, const char *what, struct fl_error **errp)
{
    char a[IMPAIR_FMT_LEN];
    if (d->latency_ns < 0 || d->jitter_ns < 0) {
        bool lat = d->latency_ns < 0;
        fl_error_setf(errp, EINVAL, "%s: %s %s is negative: durations are >= 0", what,
                      lat ? "latency" : "jitter",
                      impair_format_duration(lat ? d->latency_ns : d->jitter_ns, a, sizeof a));
        return false;
    }
    if (d->latency_ns > IMPAIR_DELAY_MAX_NS || d->jitter_ns > IMPAIR_DELAY_MAX_NS) {
        bool lat = d->latency_ns > IMPAIR_DELAY_MAX_NS;
        fl_error_setf(errp, ERANGE, "%s: %s %s is too long: at most 1h", what,
                      lat ? "latency" : "jitter",
                      impair_format_duration(lat ? d->latency_ns : d->jitter_ns, a, sizeof a));
        return false;
    }
    if ((unsigned)d->dist >= IMPAIR_DIST__COUNT) {
        fl_error_setf(errp, EINVAL,
                      "%s: distribution %d is unknown: expected uniform, normal, pareto, "
                      "paretonormal or table",
                      what, (int)d->dist);
        return false;
    }
    if ((d->dist == IMPAIR_DIST_TABLE) != (d->table != NULL)) {
        fl_error_setf(errp, EINVAL,
                      d->table ? "%s: a table is set but the distribution is not 'table'"
                               : "%s: distribution 'table' needs a table (a netem .dist file)",
                      what);
        return false;
    }
    if (d->dist != IMPAIR_DIST_UNIFORM && d->jitter_ns == 0) {
        fl_error_setf(errp, EINVAL,
                      "%s: distribution %s needs a jitter to shape: give one "
                      "(e.g. 'delay 10ms 2ms distribution %s')",
                      what,
                      d->dist == IMPAIR_DIST_TABLE ? impair_dist_table_name(d->table)
                                                   : impair_dist_name(d->dist),
                      d->dist == IMPAIR_DIST_TABLE ? "FILE" : impair_dist_name(d->dist));
        return false;
    }
    return true;
}

void impair_delay_state_init(struct impair_delay_state *st, const struct impair_delay *d)
{
    memset(st, 0, sizeof *st);
    st->latency_ns = d->latency_ns;
    st->jitter_ns = d->jitter_ns;
    st->dist = d->dist;
    st->corr = d->jitter_ns ? d->corr : 0;
    st->corr_c = impair_prob_to_fraction(st->corr);
    st->corr_s = sqrt(1 - st->corr_c * st->corr_c);
    if (d->dist == IMPAIR_DIST_TABLE) {
        st->table = impair_dist_table_q16(d->table);
        st->table_len = (uint32_t)impair_dist_table_len(d->table);
    } else if (d->dist != IMPAIR_DIST_UNIFORM) {
        st->table = impair_builtin_table(d->dist);
        st->table_len = IMPAIR_BUILTIN_LEN;
    }
    if (st->corr || st->table) {
        impair_builtin_table(IMPAIR_DIST_NORMAL); /* the copula needs it */
    }
}

void impair_delay_state_carry(struct impair_delay_state *st, const struct impair_delay_state *old)
{
    if (st->corr && old->corr) {
        st->have_z = old->have_z;
        st->z = old->z;
    }
}

/* One uniform 32-bit quantile through the Gaussian copula. */
static uint32_t copula_u32(struct impair_delay_state *st, struct impair_rng *rng)
{
    const int32_t *normal = builtin_tables[0];
    uint32_t r = impair_u32_inline(rng);
    /* e ~ N(0,1): the normal table, interpolated with the low 20 bits. */
    uint32_t i = r >> 20, f = r & 0xfffff;
    double lo = normal[i], hi = i + 1 < IMPAIR_BUILTIN_LEN ? normal[i + 1] : normal[i];
    double e = (lo + (hi - lo) * (f / 1048576.0)) / IMPAIR_Q16;
    st->z = st->have_z ? st->corr_c * st->z + st->corr_s * e : e;
    st->have_z = true;
    double u = normal_cdf(st->z) * 4294967296.0;
    if (u >= 4294967295.0) {
        return UINT32_MAX;
    }
    return u > 0 ? (uint32_t)u : 0;
}

int64_t impair_delay_sample(struct impair_delay_state *st, struct impair_rng *rng)
{
    if (!st->jitter_ns) {
        return st->latency_ns;
    }
    uint32_t u = st->corr ? copula_u32(st, rng) : impair_u32_inline(rng);
    int64_t off;
    if (!st->table) {
        uint64_t width = 2 * (uint64_t)st->jitter_ns;
        off = (int64_t)(((u128)u * width) >> 32) - st->jitter_ns;
    } else {
        int64_t t = st->table[impair_pick_u32(u, st->table_len)];
        off = (st->jitter_ns * t) >> 16; /* |product| < 2^63: jitter <= 1h, |t| <= 2^21 */
    }
    int64_t delay = st->latency_ns + off;
    return delay > 0 ? delay : 0;
}

/* ------------------------------------------------------------------ */
/* Words                                                               */
/* ------------------------------------------------------------------ */

bool impair_parse_delay_words(int argc, char **argv, int *i, const char *what,
                              struct impair_delay *d, struct fl_error **errp)
{
    if (*i >= argc) {
        fl_error_setf(errp, EINVAL, "%s: missing TIME (e.g. 'delay 10ms' or 'delay 10ms 2ms 25%%')",
                      what);
        return false;
    }
    struct fl_error *err = NULL;
    if (!impair_parse_duration(argv[*i], &d->latency_ns, &err)) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "%s: ", what);
        return false;
    }
    (*i)++;
    if (*i < argc && impair_word_is_number(argv[*i])) {
        if (!impair_parse_duration(argv[*i], &d->jitter_ns, &err)) {
            fl_error_propagate(errp, err);
            fl_error_prepend(errp, "%s: jitter: ", what);
            return false;
        }
        (*i)++;
        if (*i < argc && impair_word_is_number(argv[*i])) {
            if (!impair_parse_prob(argv[*i], &d->corr, &err)) {
                fl_error_propagate(errp, err);
                fl_error_prepend(errp, "%s: correlation: ", what);
                return false;
            }
            (*i)++;
        }
    }
    return true;
}

bool impair_parse_distribution(const char *word, const struct impair_parse_opts *opts,
                               const char *what, struct impair_delay *d, struct fl_error **errp)
{
    enum impair_dist dist;
    if (impair_dist_from_name(word, &dist) && dist != IMPAIR_DIST_TABLE) {
        d->dist = dist;
        return true;
    }
    if (!opts || !opts->read_file) {
        fl_error_setf(errp, EINVAL,
                      "%s: '%s' is not a distribution: expected uniform, normal, pareto or "
                      "paretonormal (table files are not read here)",
                      what, word);
        return false;
    }
    struct fl_error *err = NULL;
    char *text = opts->read_file(opts->arg, word, &err);
    if (!text) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp,
                         "%s: '%s' is neither uniform, normal, pareto, paretonormal nor a "
                         "readable netem .dist table: ",
                         what, word);
        return false;
    }
    struct impair_dist_table *t = impair_dist_table_parse(text, word, &err);
    free(text);
    if (!t) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "%s: ", what);
        return false;
    }
    impair_dist_table_unref(d->table);
    d->table = t;
    d->dist = IMPAIR_DIST_TABLE;
    return true;
}

void impair_format_delay_words(const struct impair_delay *d, struct fl_buf *out)
{
    char a[IMPAIR_FMT_LEN];
    fl_buf_printf(out, "delay %s", impair_format_duration(d->latency_ns, a, sizeof a));
    if (d->jitter_ns || d->corr) {
        fl_buf_printf(out, " %s", impair_format_duration(d->jitter_ns, a, sizeof a));
    }
    if (d->corr) {
        fl_buf_printf(out, " %s", impair_format_prob(d->corr, a, sizeof a));
    }
    if (d->dist == IMPAIR_DIST_TABLE && d->table) {
        fl_buf_printf(out, " distribution %s", impair_dist_table_name(d->table));
    } else if (d->dist != IMPAIR_DIST_UNIFORM) {
        fl_buf_printf(out, " distribution %s", impair_dist_name(d->dist));
    }
}

bool impair_delay_equal(const struct impair_delay *a, const struct impair_delay *b)
{
    return a->latency_ns == b->latency_ns && a->jitter_ns == b->jitter_ns && a->corr == b->corr &&
           a->dist == b->dist && a->table == b->table;
}
