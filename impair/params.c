/*
 * Link parameters: copy/clear/equal, validation (options checked against
 * each other after parsing, as iproute2's tc/q_netem.c does), the
 * tc-netem word grammar and its canonical formatter.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

void impair_link_params_copy(struct impair_link_params *dst, const struct impair_link_params *src)
{
    *dst = *src;
    impair_dist_table_ref(dst->delay.table);
}

void impair_link_params_clear(struct impair_link_params *params)
{
    impair_dist_table_unref(params->delay.table);
    memset(params, 0, sizeof *params);
}

static bool chance_equal(const struct impair_chance *a, const struct impair_chance *b)
{
    return a->p == b->p && a->corr == b->corr;
}

bool impair_link_params_equal(const struct impair_link_params *a,
                              const struct impair_link_params *b)
{
    const struct impair_loss *la = &a->loss, *lb = &b->loss;
    return a->partitioned == b->partitioned && la->model == lb->model && la->p == lb->p &&
           la->corr == lb->corr && la->ge.p == lb->ge.p && la->ge.r == lb->ge.r &&
           la->ge.one_minus_h == lb->ge.one_minus_h && la->ge.one_minus_k == lb->ge.one_minus_k &&
           la->state.p13 == lb->state.p13 && la->state.p31 == lb->state.p31 &&
           la->state.p32 == lb->state.p32 && la->state.p23 == lb->state.p23 &&
           la->state.p14 == lb->state.p14 && chance_equal(&a->duplicate, &b->duplicate) &&
           chance_equal(&a->corrupt, &b->corrupt) && impair_delay_equal(&a->delay, &b->delay) &&
           a->reorder.p == b->reorder.p && a->reorder.corr == b->reorder.corr &&
           a->reorder.gap == b->reorder.gap && a->rate.bits_per_s == b->rate.bits_per_s &&
           a->rate.packet_overhead == b->rate.packet_overhead &&
           a->rate.cell_size == b->rate.cell_size &&
           a->rate.cell_overhead == b->rate.cell_overhead && a->limit_frames == b->limit_frames &&
           a->limit_bytes == b->limit_bytes && a->mtu == b->mtu;
}

#define OVERHEAD_MAX 65535

bool impair_link_params_validate(const struct impair_link_params *p, struct fl_error **errp)
{
    char a[IMPAIR_FMT_LEN];
    if (!impair_loss_validate(&p->loss, errp) || !impair_delay_validate(&p->delay, "delay", errp)) {
        return false;
    }
    if (p->reorder.p && p->delay.latency_ns == 0) {
        fl_error_setf(errp, EINVAL,
                      "reorder requires a delay (netem semantics: reordered frames are sent "
                      "immediately, the rest delayed): add e.g. 'delay 10ms'");
        return false;
    }
    if (p->reorder.gap && !p->reorder.p) {
        fl_error_setf(errp, EINVAL,
                      "gap %u requires a reorder probability (e.g. 'reorder 25%% gap %u')",
                      p->reorder.gap, p->reorder.gap);
        return false;
    }
    if (p->rate.bits_per_s > IMPAIR_RATE_MAX_BITS) {
        fl_error_setf(errp, ERANGE, "rate: %s is above the maximum 10tbit",
                      impair_format_rate(p->rate.bits_per_s, a, sizeof a));
        return false;
    }
    if (!p->rate.bits_per_s &&
        (p->rate.packet_overhead || p->rate.cell_size || p->rate.cell_overhead)) {
        fl_error_setf(errp, EINVAL,
                      "rate: packet overhead, cell size and cell overhead need a rate "
                      "(e.g. 'rate 100mbit 20 48 5')");
        return false;
    }
    if (p->rate.packet_overhead > OVERHEAD_MAX || p->rate.packet_overhead < -OVERHEAD_MAX) {
        fl_error_setf(errp, ERANGE, "rate: packet overhead %d is out of range (-%d..%d bytes)",
                      p->rate.packet_overhead, OVERHEAD_MAX, OVERHEAD_MAX);
        return false;
    }
    if (p->rate.cell_size > OVERHEAD_MAX) {
        fl_error_setf(errp, ERANGE, "rate: cell size %u is out of range (0..%d bytes)",
                      p->rate.cell_size, OVERHEAD_MAX);
        return false;
    }
    if (p->rate.cell_overhead && !p->rate.cell_size) {
        fl_error_setf(errp, EINVAL, "rate: a cell overhead (%d) needs a cell size",
                      p->rate.cell_overhead);
        return false;
    }
    if (p->rate.cell_size && (p->rate.cell_overhead > OVERHEAD_MAX ||
                              p->rate.cell_overhead <= -(int32_t)p->rate.cell_size)) {
        fl_error_setf(errp, ERANGE,
                      "rate: cell overhead %d is out of range (%d..%d bytes: a cell occupies "
                      "at least 1 byte)",
                      p->rate.cell_overhead, 1 - (int32_t)p->rate.cell_size, OVERHEAD_MAX);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

#define LINK_WORDS(X)                                                                              \
    X(PARTITION, "partition")                                                                      \
    X(DELAY, "delay")                                                                              \
    X(DISTRIBUTION, "distribution")                                                                \
    X(LOSS, "loss")                                                                                \
    X(DROP, "drop")                                                                                \
    X(DUPLICATE, "duplicate")                                                                      \
    X(CORRUPT, "corrupt")                                                                          \
    X(REORDER, "reorder")                                                                          \
    X(GAP, "gap")                                                                                  \
    X(RATE, "rate")                                                                                \
    X(LIMIT, "limit")                                                                              \
    X(LIMIT_BYTES, "limit-bytes")                                                                  \
    X(MTU, "mtu")

enum link_word {
#define LINK_WORD_ENUM(name, str) W_##name,
    LINK_WORDS(LINK_WORD_ENUM)
#undef LINK_WORD_ENUM
        W__COUNT
};

static const char *const link_words[] = {
#define LINK_WORD_STR(name, str) str,
    LINK_WORDS(LINK_WORD_STR)
#undef LINK_WORD_STR
        NULL,
};

/* Reads a probability argument; `what` names it in errors. */
static bool prob_arg(int argc, char **argv, int *i, const char *what, impair_prob *out,
                     struct fl_error **errp)
{
    if (*i >= argc) {
        fl_error_setf(errp, EINVAL, "%s: missing PERCENT (e.g. 1%%)", what);
        return false;
    }
    struct fl_error *err = NULL;
    if (!impair_parse_prob(argv[*i], out, &err)) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "%s: ", what);
        return false;
    }
    (*i)++;
    return true;
}

/* An optional probability: parsed only when the next word is a number. */
static bool opt_prob_arg(int argc, char **argv, int *i, const char *what, impair_prob *out,
                         bool *present, struct fl_error **errp)
{
    *present = *i < argc && impair_word_is_number(argv[*i]);
    return !*present || prob_arg(argc, argv, i, what, out, errp);
}

static bool int_arg(int argc, char **argv, int *i, const char *what, int64_t min, int64_t max,
                    int64_t *out, struct fl_error **errp)
{
    if (*i >= argc) {
        fl_error_setf(errp, EINVAL, "%s: missing a number (%lld..%lld)", what, (long long)min,
                      (long long)max);
        return false;
    }
    struct fl_error *err = NULL;
    if (!impair_parse_int(argv[*i], min, max, out, what, &err)) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "%s: ", what);
        return false;
    }
    (*i)++;
    return true;
}

static bool size_arg(int argc, char **argv, int *i, const char *what, uint64_t max, uint64_t *out,
                     struct fl_error **errp)
{
    if (*i >= argc) {
        fl_error_setf(errp, EINVAL, "%s: missing SIZE (e.g. 1500, 64KiB, 1MB)", what);
        return false;
    }
    struct fl_error *err = NULL;
    if (!impair_parse_size(argv[*i], out, &err)) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "%s: ", what);
        return false;
    }
    if (*out > max) {
        fl_error_setf(errp, ERANGE, "%s: '%s' is too large (at most %llu bytes)", what, argv[*i],
                      (unsigned long long)max);
        return false;
    }
    (*i)++;
    return true;
}

static bool parse_loss(int argc, char **argv, int *i, struct impair_loss *loss,
                       struct fl_error **errp)
{
    bool more;
    const char *sub = *i < argc ? argv[*i] : "";
    if (!strcmp(sub, "gemodel")) {
        (*i)++;
        loss->model = IMPAIR_LOSS_GEMODEL;
        if (!prob_arg(argc, argv, i, "loss gemodel p", &loss->ge.p, errp)) {
            return false;
        }
        loss->ge.r = IMPAIR_PROB_MAX - loss->ge.p; /* tc's defaults */
        loss->ge.one_minus_h = IMPAIR_PROB_MAX;
        loss->ge.one_minus_k = 0;
        return opt_prob_arg(argc, argv, i, "loss gemodel r", &loss->ge.r, &more, errp) &&
               (!more || (opt_prob_arg(argc, argv, i, "loss gemodel 1-h", &loss->ge.one_minus_h,
                                       &more, errp) &&
                          (!more || opt_prob_arg(argc, argv, i, "loss gemodel 1-k",
                                                 &loss->ge.one_minus_k, &more, errp))));
    }
    if (!strcmp(sub, "state")) {
        (*i)++;
        loss->model = IMPAIR_LOSS_STATE;
        if (!prob_arg(argc, argv, i, "loss state p13", &loss->state.p13, errp)) {
            return false;
        }
        loss->state.p31 = IMPAIR_PROB_MAX - loss->state.p13; /* tc's defaults */
        loss->state.p32 = 0;
        loss->state.p23 = IMPAIR_PROB_MAX;
        loss->state.p14 = 0;
        impair_prob *rest[] = {&loss->state.p31, &loss->state.p32, &loss->state.p23,
                               &loss->state.p14};
        const char *names[] = {"loss state p31", "loss state p32", "loss state p23",
                               "loss state p14"};
        for (size_t k = 0; k < FL_ARRAY_LEN(rest); k++) {
            if (!opt_prob_arg(argc, argv, i, names[k], rest[k], &more, errp)) {
                return false;
            }
            if (!more) {
                break;
            }
        }
        return true;
    }
    if (!strcmp(sub, "random")) {
        (*i)++;
    } else if (*i < argc && !impair_word_is_number(sub)) {
        fl_error_setf(
            errp, EINVAL,
            "loss: '%s' is neither a percentage nor a model: expected "
            "'loss PERCENT [CORR]', 'loss random PERCENT [CORR]', "
            "'loss gemodel P [R [1-H [1-K]]]' or 'loss state P13 [P31 [P32 [P23 [P14]]]]'",
            sub);
        return false;
    }
    loss->model = IMPAIR_LOSS_RANDOM;
    return prob_arg(argc, argv, i, "loss", &loss->p, errp) &&
           opt_prob_arg(argc, argv, i, "loss correlation", &loss->corr, &more, errp);
}

static bool parse_rate(int argc, char **argv, int *i, struct impair_link_params *p,
                       struct fl_error **errp)
{
    if (*i >= argc) {
        fl_error_setf(errp, EINVAL, "rate: missing RATE (e.g. 'rate 100mbit')");
        return false;
    }
    struct fl_error *err = NULL;
    if (!impair_parse_rate(argv[*i], &p->rate.bits_per_s, &err)) {
        fl_error_propagate(errp, err);
        fl_error_prepend(errp, "rate: ");
        return false;
    }
    (*i)++;
    int64_t v;
    if (*i < argc && impair_word_is_number(argv[*i])) {
        if (!int_arg(argc, argv, i, "rate packet overhead", -OVERHEAD_MAX, OVERHEAD_MAX, &v,
                     errp)) {
            return false;
        }
        p->rate.packet_overhead = (int32_t)v;
        if (*i < argc && impair_word_is_number(argv[*i])) {
            if (!int_arg(argc, argv, i, "rate cell size", 0, OVERHEAD_MAX, &v, errp)) {
                return false;
            }
            p->rate.cell_size = (uint32_t)v;
            if (*i < argc && impair_word_is_number(argv[*i])) {
                if (!int_arg(argc, argv, i, "rate cell overhead", -OVERHEAD_MAX, OVERHEAD_MAX, &v,
                             errp)) {
                    return false;
                }
                p->rate.cell_overhead = (int32_t)v;
            }
        }
    }
    return true;
}

static bool parse_words(int argc, char **argv, const struct impair_parse_opts *opts,
                        struct impair_link_params *p, struct fl_error **errp)
{
    bool seen[W__COUNT] = {false};
    int i = 0;
    while (i < argc) {
        const char *w = argv[i];
        int k;
        for (k = 0; k < W__COUNT && strcmp(w, link_words[k]); k++) {
        }
        if (k == W__COUNT) {
            const char *s = impair_suggest(w, link_words);
            if (s) {
                fl_error_setf(errp, EINVAL, "'%s' is not a link parameter; did you mean '%s'?", w,
                              s);
            } else {
                fl_error_setf(errp, EINVAL,
                              "'%s' is not a link parameter: expected partition, delay, "
                              "distribution, loss, duplicate, corrupt, reorder, gap, rate, "
                              "limit, limit-bytes or mtu",
                              w);
            }
            return false;
        }
        enum link_word word = (enum link_word)k;
        if (word == W_DROP) {
            word = W_LOSS;
        }
        if (seen[word]) {
            fl_error_setf(errp, EINVAL, "'%s' is given twice", link_words[word]);
            return false;
        }
        seen[word] = true;
        i++;
        bool more;
        int64_t v;
        uint64_t u;
        switch (word) {
        case W_PARTITION:
            p->partitioned = true;
            break;
        case W_DELAY:
            if (!impair_parse_delay_words(argc, argv, &i, "delay", &p->delay, errp)) {
                return false;
            }
            break;
        case W_DISTRIBUTION:
            if (i >= argc) {
                fl_error_setf(errp, EINVAL,
                              "distribution: missing NAME (uniform, normal, pareto, "
                              "paretonormal or a .dist file)");
                return false;
            }
            if (!impair_parse_distribution(argv[i], opts, "distribution", &p->delay, errp)) {
                return false;
            }
            i++;
            break;
        case W_LOSS:
            if (!parse_loss(argc, argv, &i, &p->loss, errp)) {
                return false;
            }
            break;
        case W_DUPLICATE:
            if (!prob_arg(argc, argv, &i, "duplicate", &p->duplicate.p, errp) ||
                !opt_prob_arg(argc, argv, &i, "duplicate correlation", &p->duplicate.corr, &more,
                              errp)) {
                return false;
            }
            break;
        case W_CORRUPT:
            if (!prob_arg(argc, argv, &i, "corrupt", &p->corrupt.p, errp) ||
                !opt_prob_arg(argc, argv, &i, "corrupt correlation", &p->corrupt.corr, &more,
                              errp)) {
                return false;
            }
            break;
        case W_REORDER:
            if (!prob_arg(argc, argv, &i, "reorder", &p->reorder.p, errp) ||
                !opt_prob_arg(argc, argv, &i, "reorder correlation", &p->reorder.corr, &more,
                              errp)) {
                return false;
            }
            break;
        case W_GAP:
            if (!int_arg(argc, argv, &i, "gap", 0, UINT32_MAX, &v, errp)) {
                return false;
            }
            p->reorder.gap = (uint32_t)v;
            break;
        case W_RATE:
            if (!parse_rate(argc, argv, &i, p, errp)) {
                return false;
            }
            break;
        case W_LIMIT:
            if (!int_arg(argc, argv, &i, "limit", 0, UINT32_MAX, &v, errp)) {
                return false;
            }
            p->limit_frames = (uint32_t)v;
            break;
        case W_LIMIT_BYTES:
            if (!size_arg(argc, argv, &i, "limit-bytes", UINT64_MAX, &p->limit_bytes, errp)) {
                return false;
            }
            break;
        case W_MTU:
            if (!size_arg(argc, argv, &i, "mtu", UINT32_MAX, &u, errp)) {
                return false;
            }
            p->mtu = (uint32_t)u;
            break;
        default:
            break;
        }
    }
    return impair_link_params_validate(p, errp);
}

bool impair_link_params_parse_ex(int argc, char **argv, const struct impair_parse_opts *opts,
                                 struct impair_link_params *out, struct fl_error **errp)
{
    struct impair_link_params p;
    memset(&p, 0, sizeof p);
    if (!parse_words(argc, argv, opts, &p, errp)) {
        impair_link_params_clear(&p);
        return false;
    }
    *out = p;
    return true;
}

bool impair_link_params_parse(int argc, char **argv, struct impair_link_params *out,
                              struct fl_error **errp)
{
    return impair_link_params_parse_ex(argc, argv, NULL, out, errp);
}

bool impair_link_params_parse_string(const char *words, const struct impair_parse_opts *opts,
                                     struct impair_link_params *out, struct fl_error **errp)
{
    char *copy = fl_xstrdup(words);
    char **argv = NULL;
    size_t argc = 0, alloc = 0;
    for (char *p = copy; *p;) {
        while (*p && isspace((unsigned char)*p)) {
            *p++ = '\0';
        }
        if (!*p) {
            break;
        }
        argv = fl_xgrow(argv, &alloc, argc + 1, sizeof *argv);
        argv[argc++] = p;
        while (*p && !isspace((unsigned char)*p)) {
            p++;
        }
    }
    bool ok = impair_link_params_parse_ex((int)argc, argv, opts, out, errp);
    free(argv);
    free(copy);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

/* A space between words, none before the first one we append. */
static void sep(struct fl_buf *out, size_t start)
{
    if (out->size > start) {
        fl_buf_puts(out, " ");
    }
}

static void put_chance(struct fl_buf *out, size_t start, const char *word,
                       const struct impair_chance *c)
{
    char a[IMPAIR_FMT_LEN];
    sep(out, start);
    fl_buf_printf(out, "%s %s", word, impair_format_prob(c->p, a, sizeof a));
    if (c->corr) {
        fl_buf_printf(out, " %s", impair_format_prob(c->corr, a, sizeof a));
    }
}

void impair_link_params_format(const struct impair_link_params *p, struct fl_buf *out)
{
    char a[IMPAIR_FMT_LEN], b[IMPAIR_FMT_LEN], c[IMPAIR_FMT_LEN], d[IMPAIR_FMT_LEN],
        e[IMPAIR_FMT_LEN];
    size_t start = out->size;
    if (p->partitioned) {
        sep(out, start);
        fl_buf_puts(out, "partition");
    }
    if (p->delay.latency_ns || p->delay.jitter_ns || p->delay.corr ||
        p->delay.dist != IMPAIR_DIST_UNIFORM) {
        sep(out, start);
        impair_format_delay_words(&p->delay, out);
    }
    switch (p->loss.model) {
    case IMPAIR_LOSS_RANDOM:
        put_chance(out, start, "loss", &(struct impair_chance){p->loss.p, p->loss.corr});
        break;
    case IMPAIR_LOSS_GEMODEL:
        sep(out, start);
        fl_buf_printf(out, "loss gemodel %s %s %s %s",
                      impair_format_prob(p->loss.ge.p, a, sizeof a),
                      impair_format_prob(p->loss.ge.r, b, sizeof b),
                      impair_format_prob(p->loss.ge.one_minus_h, c, sizeof c),
                      impair_format_prob(p->loss.ge.one_minus_k, d, sizeof d));
        break;
    case IMPAIR_LOSS_STATE:
        sep(out, start);
        fl_buf_printf(out, "loss state %s %s %s %s %s",
                      impair_format_prob(p->loss.state.p13, a, sizeof a),
                      impair_format_prob(p->loss.state.p31, b, sizeof b),
                      impair_format_prob(p->loss.state.p32, c, sizeof c),
                      impair_format_prob(p->loss.state.p23, d, sizeof d),
                      impair_format_prob(p->loss.state.p14, e, sizeof e));
        break;
    default:
        break;
    }
    if (p->duplicate.p || p->duplicate.corr) {
        put_chance(out, start, "duplicate", &p->duplicate);
    }
    if (p->corrupt.p || p->corrupt.corr) {
        put_chance(out, start, "corrupt", &p->corrupt);
    }
    if (p->reorder.p || p->reorder.corr) {
        put_chance(out, start, "reorder", &(struct impair_chance){p->reorder.p, p->reorder.corr});
    }
    if (p->reorder.gap) {
        sep(out, start);
        fl_buf_printf(out, "gap %u", p->reorder.gap);
    }
    if (p->rate.bits_per_s) {
        sep(out, start);
        fl_buf_printf(out, "rate %s", impair_format_rate(p->rate.bits_per_s, a, sizeof a));
        if (p->rate.packet_overhead || p->rate.cell_size || p->rate.cell_overhead) {
            fl_buf_printf(out, " %d", p->rate.packet_overhead);
        }
        if (p->rate.cell_size || p->rate.cell_overhead) {
            fl_buf_printf(out, " %u", p->rate.cell_size);
        }
        if (p->rate.cell_overhead) {
            fl_buf_printf(out, " %d", p->rate.cell_overhead);
        }
    }
    if (p->limit_frames) {
        sep(out, start);
        fl_buf_printf(out, "limit %u", p->limit_frames);
    }
    if (p->limit_bytes) {
        sep(out, start);
        fl_buf_printf(out, "limit-bytes %s", impair_format_size(p->limit_bytes, a, sizeof a));
    }
    if (p->mtu) {
        sep(out, start);
        fl_buf_printf(out, "mtu %u", p->mtu);
    }
    if (!out->data) {
        fl_buf_puts(out, ""); /* always leave a valid string */
    }
}
