/*
 * Human values at the parse/format boundary: durations, probabilities,
 * rates, sizes, errno names.  Decimals are converted with integer
 * arithmetic (a mantissa and a power of ten), never through a double, so
 * "0.1%" always means the same impair_prob and parse(format(x)) == x.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impair/internal.h"

/* At most this many significant digits in a decimal (keeps every product
 * below 2^128). */
#define MAX_DIGITS 20

/*
 * Reads "<digits>[.<digits>]" (at least one digit).  On success returns
 * the end pointer, *mant the digits as an integer and *scale the number of
 * fractional digits.  Returns NULL if there is no digit or too many.
 */
static const char *parse_decimal(const char *s, u128 *mant, int *scale)
{
    u128 m = 0;
    int digits = 0, frac = 0;
    bool dot = false, any = false;
    const char *p = s;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            any = true;
            if (m == 0 && *p == '0' && !dot) {
                continue; /* leading zeros are free */
            }
            if (++digits > MAX_DIGITS) {
                return NULL;
            }
            m = m * 10 + (unsigned)(*p - '0');
            if (dot) {
                frac++;
            }
        } else if (*p == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!any) {
        return NULL;
    }
    *mant = m;
    *scale = frac;
    return p;
}

static u128 pow10_u128(int n)
{
    u128 r = 1;
    while (n-- > 0) {
        r *= 10;
    }
    return r;
}

/* round(mant * mul / 10^scale) */
static u128 scale_round(u128 mant, u128 mul, int scale)
{
    u128 d = pow10_u128(scale);
    return (mant * mul + d / 2) / d;
}

/* Appends the exact decimal value / unit (unit a power of ten), trailing
 * zeros of the fraction removed. */
static void put_decimal(char *buf, size_t size, uint64_t value, uint64_t unit, const char *suffix)
{
    uint64_t ip = value / unit, fp = value % unit;
    if (!fp) {
        snprintf(buf, size, "%llu%s", (unsigned long long)ip, suffix);
        return;
    }
    int width = 0;
    for (uint64_t u = unit; u > 1; u /= 10) {
        width++;
    }
    while (fp % 10 == 0) {
        fp /= 10;
        width--;
    }
    snprintf(buf, size, "%llu.%0*llu%s", (unsigned long long)ip, width, (unsigned long long)fp,
             suffix);
}

/* ------------------------------------------------------------------ */
/* Durations                                                           */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", FL_NS_PER_US},
    {"\xc2\xb5s", FL_NS_PER_US}, /* µs */
    {"ms", FL_NS_PER_MS},
    {"s", FL_NS_PER_SEC},
    {"m", 60 * FL_NS_PER_SEC},
    {"h", 3600 * FL_NS_PER_SEC},
};

#define DURATION_MAX_NS (1000 * 3600 * FL_NS_PER_SEC)
#define DURATION_HINT   "expected a number followed by ns, us, ms, s, m or h (e.g. 250us, 10ms, 1.5s)"

bool impair_parse_duration(const char *s, int64_t *ns, struct fl_error **errp)
{
    if (!s || !*s) {
        fl_error_setf(errp, EINVAL, "'' is not a duration: " DURATION_HINT);
        return false;
    }
    if (s[0] == '-') {
        fl_error_setf(errp, EINVAL, "'%s' is not a duration: durations cannot be negative", s);
        return false;
    }
    u128 mant;
    int scale;
    const char *end = parse_decimal(s, &mant, &scale);
    if (!end) {
        fl_error_setf(errp, EINVAL, "'%s' is not a duration: " DURATION_HINT, s);
        return false;
    }
    if (!*end) {
        if (mant == 0) {
            *ns = 0;
            return true;
        }
        fl_error_setf(errp, EINVAL, "'%s' is not a duration: the unit is missing; " DURATION_HINT,
                      s);
        return false;
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(duration_units); i++) {
        if (!strcmp(end, duration_units[i].name)) {
            u128 v = scale_round(mant, (u128)duration_units[i].ns, scale);
            if (v > (u128)DURATION_MAX_NS) {
                fl_error_setf(errp, ERANGE, "'%s' is too long: durations are at most 1000h", s);
                return false;
            }
            *ns = (int64_t)v;
            return true;
        }
    }
    fl_error_setf(errp, EINVAL, "'%s' is not a duration: unknown unit '%s'; " DURATION_HINT, s,
                  end);
    return false;
}

char *impair_format_duration(int64_t ns, char *buf, size_t size)
{
    if (ns == 0) {
        snprintf(buf, size, "0");
        return buf;
    }
    uint64_t v = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char tmp[IMPAIR_FMT_LEN];
    const uint64_t h = 3600 * (uint64_t)FL_NS_PER_SEC, m = 60 * (uint64_t)FL_NS_PER_SEC;
    if (v % h == 0) {
        put_decimal(tmp, sizeof tmp, v / h, 1, "h");
    } else if (v % m == 0) {
        put_decimal(tmp, sizeof tmp, v / m, 1, "m");
    } else if (v >= (uint64_t)FL_NS_PER_SEC) {
        put_decimal(tmp, sizeof tmp, v, FL_NS_PER_SEC, "s");
    } else if (v >= (uint64_t)FL_NS_PER_MS) {
        put_decimal(tmp, sizeof tmp, v, FL_NS_PER_MS, "ms");
    } else if (v >= (uint64_t)FL_NS_PER_US) {
        put_decimal(tmp, sizeof tmp, v, FL_NS_PER_US, "us");
    } else {
        put_decimal(tmp, sizeof tmp, v, 1, "ns");
    }
    snprintf(buf, size, "%s%s", ns < 0 ? "-" : "", tmp);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Probabilities                                                       */
/* ------------------------------------------------------------------ */

bool impair_parse_prob(const char *s, impair_prob *p, struct fl_error **errp)
{
    u128 mant;
    int scale;
    const char *end = s && s[0] != '-' ? parse_decimal(s, &mant, &scale) : NULL;
    if (!end || (*end && strcmp(end, "%"))) {
        fl_error_setf(errp, EINVAL,
                      "'%s' is not a probability: expected a percentage 0%%..100%% "
                      "(e.g. 1%%, 0.1%%, 25%%)",
                      s ? s : "");
        return false;
    }
    if (!*end && mant != 0) {
        fl_error_setf(errp, EINVAL,
                      "'%s' is not a probability: write it as a percentage with '%%' "
                      "(e.g. %s%%), 0%%..100%%",
                      s, s);
        return false;
    }
    if (mant > 100 * pow10_u128(scale)) {
        fl_error_setf(errp, ERANGE, "'%s' is not a probability (0%%..100%%)", s);
        return false;
    }
    *p = (impair_prob)scale_round(mant, IMPAIR_PROB_MAX, scale + 2);
    return true;
}

char *impair_format_prob(impair_prob p, char *buf, size_t size)
{
    /* The shortest decimal percentage that parses back to p. */
    for (int d = 0; d <= 12; d++) {
        u128 den = (u128)IMPAIR_PROB_MAX;
        u128 num = (u128)p * 100 * pow10_u128(d);
        u128 v = (num + den / 2) / den; /* percent * 10^d, rounded */
        uint64_t unit = (uint64_t)pow10_u128(d);
        char tmp[IMPAIR_FMT_LEN];
        put_decimal(tmp, sizeof tmp, (uint64_t)v, unit, "%");
        impair_prob back;
        if (impair_parse_prob(tmp, &back, NULL) && back == p) {
            snprintf(buf, size, "%s", tmp);
            return buf;
        }
    }
    /* Not reached: 10 fractional digits always suffice for 32 bits. */
    snprintf(buf, size, "%.12f%%", impair_prob_to_fraction(p) * 100);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Rates (tc's unit table, tc/tc_util.c get_rate)                      */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint64_t bits;
} rate_units[] = {
    {"bit", 1},
    {"kibit", UINT64_C(1) << 10},
    {"kbit", 1000},
    {"mibit", UINT64_C(1) << 20},
    {"mbit", 1000000},
    {"gibit", UINT64_C(1) << 30},
    {"gbit", 1000000000},
    {"tibit", UINT64_C(1) << 40},
    {"tbit", 1000000000000},
    {"bps", 8},
    {"kibps", UINT64_C(8) << 10},
    {"kbps", 8000},
    {"mibps", UINT64_C(8) << 20},
    {"mbps", 8000000},
    {"gibps", UINT64_C(8) << 30},
    {"gbps", 8000000000},
    {"tibps", UINT64_C(8) << 40},
    {"tbps", 8000000000000},
};

#define RATE_HINT                                                                                  \
    "expected a number followed by bit, kbit, mbit, gbit, tbit (x1000), kibit, mibit, gibit, "     \
    "tibit (x1024), or bps, kbps, mbps, gbps, tbps, kibps, mibps, gibps, tibps (BYTES per "        \
    "second) (e.g. 100kbit, 1.5gbit, 10MBps)"

bool impair_parse_rate(const char *s, uint64_t *bits_per_s, struct fl_error **errp)
{
    u128 mant;
    int scale;
    const char *end = s && s[0] != '-' ? parse_decimal(s, &mant, &scale) : NULL;
    if (!end) {
        fl_error_setf(errp, EINVAL, "'%s' is not a rate: " RATE_HINT, s ? s : "");
        return false;
    }
    if (!*end) {
        fl_error_setf(errp, EINVAL, "'%s' is not a rate: the unit is missing; " RATE_HINT, s);
        return false;
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(rate_units); i++) {
        if (!strcasecmp(end, rate_units[i].name)) {
            u128 v = scale_round(mant, rate_units[i].bits, scale);
            if (v == 0) {
                fl_error_setf(errp, ERANGE,
                              "'%s' is not a usable rate: it must be at least 1bit "
                              "(leave the rate out for an unlimited link)",
                              s);
                return false;
            }
            if (v > UINT64_MAX) {
                fl_error_setf(errp, ERANGE, "'%s' is too large a rate", s);
                return false;
            }
            *bits_per_s = (uint64_t)v;
            return true;
        }
    }
    fl_error_setf(errp, EINVAL, "'%s' is not a rate: unknown unit '%s'; " RATE_HINT, s, end);
    return false;
}

char *impair_format_rate(uint64_t bits, char *buf, size_t size)
{
    static const struct {
        uint64_t unit;
        const char *name;
    } units[] = {{1000000000000, "tbit"}, {1000000000, "gbit"}, {1000000, "mbit"}, {1000, "kbit"}};
    for (size_t i = 0; i < FL_ARRAY_LEN(units); i++) {
        if (bits >= units[i].unit) {
            put_decimal(buf, size, bits, units[i].unit, units[i].name);
            return buf;
        }
    }
    put_decimal(buf, size, bits, 1, "bit");
    return buf;
}

/* ------------------------------------------------------------------ */
/* Sizes                                                               */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint64_t bytes;
} size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", UINT64_C(1) << 10},
    {"kib", UINT64_C(1) << 10},
    {"kb", 1000},
    {"m", UINT64_C(1) << 20},
    {"mib", UINT64_C(1) << 20},
    {"mb", 1000000},
    {"g", UINT64_C(1) << 30},
    {"gib", UINT64_C(1) << 30},
    {"gb", 1000000000},
    {"t", UINT64_C(1) << 40},
    {"tib", UINT64_C(1) << 40},
    {"tb", 1000000000000},
};

#define SIZE_HINT                                                                                  \
    "expected a number of bytes, optionally followed by k, m, g, t or KiB, MiB, GiB, TiB "         \
    "(x1024) or kB, MB, GB, TB (x1000) (e.g. 1500, 64KiB, 1MB)"

bool impair_parse_size(const char *s, uint64_t *bytes, struct fl_error **errp)
{
    u128 mant;
    int scale;
    const char *end = s && s[0] != '-' ? parse_decimal(s, &mant, &scale) : NULL;
    if (!end) {
        fl_error_setf(errp, EINVAL, "'%s' is not a size: " SIZE_HINT, s ? s : "");
        return false;
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(size_units); i++) {
        if (!strcasecmp(end, size_units[i].name)) {
            u128 d = pow10_u128(scale);
            u128 num = mant * size_units[i].bytes;
            if (num % d) {
                fl_error_setf(errp, EINVAL, "'%s' is not a whole number of bytes", s);
                return false;
            }
            if (num / d > UINT64_MAX) {
                fl_error_setf(errp, ERANGE, "'%s' is too large a size", s);
                return false;
            }
            *bytes = (uint64_t)(num / d);
            return true;
        }
    }
    fl_error_setf(errp, EINVAL, "'%s' is not a size: unknown unit '%s'; " SIZE_HINT, s, end);
    return false;
}

char *impair_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const struct {
        uint64_t unit;
        const char *name;
    } units[] = {
        {UINT64_C(1) << 40, "TiB"},
        {UINT64_C(1) << 30, "GiB"},
        {UINT64_C(1) << 20, "MiB"},
        {UINT64_C(1) << 10, "KiB"},
        {1000000000000, "TB"},
        {1000000000, "GB"},
        {1000000, "MB"},
        {1000, "kB"},
    };
    for (size_t i = 0; bytes && i < FL_ARRAY_LEN(units); i++) {
        if (bytes % units[i].unit == 0) {
            snprintf(buf, size, "%llu%s", (unsigned long long)(bytes / units[i].unit),
                     units[i].name);
            return buf;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
    return buf;
}

/* ------------------------------------------------------------------ */
/* errno names                                                         */
/* ------------------------------------------------------------------ */

#define IMPAIR_ERRNOS(X)                                                                           \
    X(EIO)                                                                                         \
    X(ENOSPC)                                                                                      \
    X(EROFS)                                                                                       \
    X(EPERM)                                                                                       \
    X(EACCES)                                                                                      \
    X(EINVAL)                                                                                      \
    X(ENOMEM)                                                                                      \
    X(EAGAIN)                                                                                      \
    X(EBUSY)                                                                                       \
    X(ETIMEDOUT)                                                                                   \
    X(EDQUOT)                                                                                      \
    X(EFBIG)                                                                                       \
    X(ENXIO)                                                                                       \
    X(ENODEV)                                                                                      \
    X(ENOTSUP)                                                                                     \
    X(EOVERFLOW)                                                                                   \
    X(ECANCELED)                                                                                   \
    X(ESHUTDOWN)                                                                                   \
    X(EILSEQ)

static const struct {
    const char *name;
    int value;
} errno_names[] = {
#define IMPAIR_ERRNO_ENTRY(e) {#e, e},
    IMPAIR_ERRNOS(IMPAIR_ERRNO_ENTRY)
#undef IMPAIR_ERRNO_ENTRY
};

const char *impair_errno_name(int errnum)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(errno_names); i++) {
        if (errno_names[i].value == errnum) {
            return errno_names[i].name;
        }
    }
    return NULL;
}

bool impair_parse_errno(const char *s, int *errnum, struct fl_error **errp)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(errno_names); i++) {
        if (!strcasecmp(s, errno_names[i].name)) {
            *errnum = errno_names[i].value;
            return true;
        }
    }
    int64_t v;
    if (impair_word_is_number(s) && impair_parse_int(s, 1, 4095, &v, NULL, NULL)) {
        *errnum = (int)v;
        return true;
    }
    struct fl_buf names = {0};
    for (size_t i = 0; i < FL_ARRAY_LEN(errno_names); i++) {
        fl_buf_printf(&names, "%s%s", i ? ", " : "", errno_names[i].name);
    }
    fl_error_setf(errp, EINVAL, "'%s' is not an errno: expected one of %s, or a number 1..4095", s,
                  names.data);
    fl_buf_free(&names);
    return false;
}

/* ------------------------------------------------------------------ */
/* Small word helpers shared by the parsers                            */
/* ------------------------------------------------------------------ */

bool impair_word_is_number(const char *s)
{
    if (*s == '-' || *s == '+') {
        s++;
    }
    if (*s == '.') {
        s++;
    }
    return *s >= '0' && *s <= '9';
}

bool impair_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
                      struct fl_error **errp)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || isspace((unsigned char)*s) || *end || errno || v < min || v > max) {
        fl_error_setf(errp, EINVAL, "'%s' is not a valid %s: expected a whole number %lld..%lld", s,
                      what ? what : "number", (long long)min, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

const char *impair_suggest(const char *w, const char *const *words)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; words[i]; i++) {
        size_t d = fl_edit_distance(w, words[i]);
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
    }
    size_t len = strlen(w);
    return best && best_d <= (len >= 4 ? 2 : 1) ? best : NULL;
}
