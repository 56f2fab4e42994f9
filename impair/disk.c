/*
 * Disks: per-request decisions (latency, errno over an optional byte
 * range, read corruption) with the same PRNG discipline as links.
 * Capacity, the volatile write cache, crash policies and stalls are
 * blkback's storage model; this is only "what does the impairment say".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

const char *impair_io_op_name(enum impair_io_op op)
{
    static const char *const names[] = {
#define IMPAIR_IO_NAME(name, str) str,
        IMPAIR_IO_OPS(IMPAIR_IO_NAME)
#undef IMPAIR_IO_NAME
    };
    return (unsigned)op < FL_ARRAY_LEN(names) ? names[op] : "?";
}

bool impair_io_op_from_name(const char *name, enum impair_io_op *op)
{
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        if (!strcmp(name, impair_io_op_name((enum impair_io_op)i))) {
            *op = (enum impair_io_op)i;
            return true;
        }
    }
    return false;
}

void impair_disk_params_copy(struct impair_disk_params *dst, const struct impair_disk_params *src)
{
    *dst = *src;
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        impair_dist_table_ref(dst->op[i].latency.table);
    }
}

void impair_disk_params_clear(struct impair_disk_params *params)
{
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        impair_dist_table_unref(params->op[i].latency.table);
    }
    memset(params, 0, sizeof *params);
}

bool impair_disk_params_equal(const struct impair_disk_params *a,
                              const struct impair_disk_params *b)
{
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        const struct impair_disk_op_params *x = &a->op[i], *y = &b->op[i];
        if (!impair_delay_equal(&x->latency, &y->latency) || x->error_p != y->error_p ||
            x->error_errno != y->error_errno || x->range_start != y->range_start ||
            x->range_end != y->range_end || x->corrupt_p != y->corrupt_p) {
            return false;
        }
    }
    return true;
}

bool impair_disk_params_validate(const struct impair_disk_params *params, struct fl_error **errp)
{
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        const struct impair_disk_op_params *o = &params->op[i];
        const char *op = impair_io_op_name((enum impair_io_op)i);
        char what[64];
        snprintf(what, sizeof what, "%s delay", op);
        if (!impair_delay_validate(&o->latency, what, errp)) {
            return false;
        }
        if (o->error_errno < 0 || o->error_errno > 4095) {
            fl_error_setf(errp, EINVAL, "%s error: errno %d is out of range (1..4095, e.g. EIO)",
                          op, o->error_errno);
            return false;
        }
        if (o->range_start || o->range_end) {
            if (i == IMPAIR_IO_FLUSH) {
                fl_error_setf(errp, EINVAL,
                              "flush error: a flush has no extent, so it takes no range");
                return false;
            }
            if (!o->error_p) {
                fl_error_setf(errp, EINVAL,
                              "%s error: a range needs an error probability "
                              "(e.g. '%s error 1%% EIO range 0 1GiB')",
                              op, op);
                return false;
            }
            if (o->range_end <= o->range_start) {
                fl_error_setf(errp, EINVAL,
                              "%s error: range end %llu is not after its start %llu "
                              "(range START END covers bytes START..END-1)",
                              op, (unsigned long long)o->range_end,
                              (unsigned long long)o->range_start);
                return false;
            }
        }
        if (o->corrupt_p && i != IMPAIR_IO_READ) {
            fl_error_setf(errp, EINVAL,
                          "%s corrupt: only reads return data to corrupt (use 'read corrupt')", op);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Words                                                               */
/* ------------------------------------------------------------------ */

/*
 * The disk grammar, one for scenarios, `net`/runner control and `disk
 * serve`:
 *
 *   [OP] (delay TIME [JITTER [CORR]] | distribution NAME |
 *         error PERCENT [ERRNO] [range START END] | corrupt PERCENT) ...
 *
 * OP (read, write, flush, trim, write-zeroes, all) selects what the
 * following clauses apply to (all until the first OP).  Shorthands, so
 * `disk serve`'s compact options are the same grammar, not a second one:
 * ':' separates words like a space ("write:error:1%:EIO"); a bare TIME
 * is a delay clause ("write:5ms:1ms" = "write delay 5ms 1ms"); an ERRNO
 * first names an error clause ("write:EIO:1%" = "write error 1% EIO");
 * and START-END is a range ("read:EIO:0.1%:0-1G").
 */

/* An errno name where a clause is expected: EIO, enospc (not "error"). */
static bool is_errno_word(const char *w)
{
    int e;
    return (w[0] == 'E' || w[0] == 'e') && strcmp(w, "error") != 0 &&
           impair_parse_errno(w, &e, NULL);
}

/* START-END with both sides sizes: "0-1G", "1M-2M". */
static bool is_range_word(const char *w)
{
    const char *dash = strchr(w, '-');
    return w[0] >= '0' && w[0] <= '9' && dash && dash[1] != '\0';
}

static bool parse_range_word(const char *w, uint64_t *start, uint64_t *end, struct fl_error **errp)
{
    char *copy = fl_xstrdup(w);
    char *dash = strchr(copy, '-');
    *dash++ = '\0';
    bool ok = impair_parse_size(copy, start, errp) && impair_parse_size(dash, end, errp);
    free(copy);
    return ok;
}

#define ALL_OPS ((1u << IMPAIR_IO__COUNT) - 1)

static const char *const disk_words[] = {"read",         "write",   "flush", "trim",
                                         "write-zeroes", "all",     "delay", "distribution",
                                         "error",        "corrupt", NULL};

static bool parse_disk_words(int argc, char **argv, const struct impair_parse_opts *opts,
                             struct impair_disk_params *p, struct fl_error **errp)
{
    unsigned mask = ALL_OPS;
    const char *sel = "all";
    int i = 0;
    while (i < argc) {
        const char *w = argv[i++];
        enum impair_io_op op;
        struct fl_error *err = NULL;
        char what[64];
        if (impair_io_op_from_name(w, &op)) {
            mask = 1u << op;
            sel = w;
        } else if (!strcmp(w, "all")) {
            mask = ALL_OPS;
            sel = w;
        } else if (!strcmp(w, "delay") || impair_word_is_number(w)) {
            /* "delay TIME [JITTER [CORR]]"; a bare TIME is a delay too
             * ('write:5ms:1ms') */
            struct impair_delay d = {0};
            snprintf(what, sizeof what, "%s delay", sel);
            if (strcmp(w, "delay") != 0) {
                i--;
            }
            if (!impair_parse_delay_words(argc, argv, &i, what, &d, errp)) {
                return false;
            }
            for (int k = 0; k < IMPAIR_IO__COUNT; k++) {
                if (mask & (1u << k)) {
                    p->op[k].latency.latency_ns = d.latency_ns;
                    p->op[k].latency.jitter_ns = d.jitter_ns;
                    p->op[k].latency.corr = d.corr;
                }
            }
        } else if (!strcmp(w, "distribution")) {
            struct impair_delay d = {0};
            snprintf(what, sizeof what, "%s distribution", sel);
            if (i >= argc) {
                fl_error_setf(errp, EINVAL,
                              "%s: missing NAME (uniform, normal, pareto, "
                              "paretonormal or a .dist file)",
                              what);
                return false;
            }
            if (!impair_parse_distribution(argv[i++], opts, what, &d, errp)) {
                return false;
            }
            for (int k = 0; k < IMPAIR_IO__COUNT; k++) {
                if (mask & (1u << k)) {
                    impair_dist_table_unref(p->op[k].latency.table);
                    p->op[k].latency.dist = d.dist;
                    p->op[k].latency.table = impair_dist_table_ref(d.table);
                }
            }
            impair_dist_table_unref(d.table);
        } else if (!strcmp(w, "error") || is_errno_word(w)) {
            /* "error PERCENT [ERRNO] [range START END]"; the errno may also
             * come first and name the clause: "EIO 1%" ('write:EIO:1%') */
            impair_prob prob;
            int errnum = EIO;
            uint64_t start = 0, end = 0;
            bool errno_first = strcmp(w, "error") != 0;
            snprintf(what, sizeof what, "%s error", sel);
            if (errno_first && !impair_parse_errno(w, &errnum, &err)) {
                fl_error_propagate(errp, err);
                fl_error_prepend(errp, "%s: ", what);
                return false;
            }
            if (i >= argc || !impair_parse_prob(argv[i], &prob, &err)) {
                if (!err) {
                    fl_error_setf(&err, EINVAL, "missing PERCENT (e.g. '%s 1%% EIO')", what);
                }
                fl_error_propagate(errp, err);
                fl_error_prepend(errp, "%s: ", what);
                return false;
            }
            i++;
            /* an errno name (EIO, enospc) or number may follow */
            if (!errno_first && i < argc &&
                (((argv[i][0] == 'E' || argv[i][0] == 'e') && strcmp(argv[i], "error") != 0) ||
                 (argv[i][0] >= '0' && argv[i][0] <= '9' &&
                  argv[i][strspn(argv[i], "0123456789")] == '\0'))) {
                if (!impair_parse_errno(argv[i], &errnum, &err)) {
                    fl_error_propagate(errp, err);
                    fl_error_prepend(errp, "%s: ", what);
                    return false;
                }
                i++;
            }
            if (i < argc && !strcmp(argv[i], "range")) {
                if (i + 2 >= argc) {
                    fl_error_setf(errp, EINVAL,
                                  "%s: range needs START and END (bytes, e.g. 'range 0 1GiB')",
                                  what);
                    return false;
                }
                if (!impair_parse_size(argv[i + 1], &start, &err) ||
                    !impair_parse_size(argv[i + 2], &end, &err)) {
                    fl_error_propagate(errp, err);
                    fl_error_prepend(errp, "%s: range: ", what);
                    return false;
                }
                i += 3;
            } else if (i < argc && is_range_word(argv[i])) {
                /* START-END, as in 'read:EIO:0.1%:0-1G' */
                if (!parse_range_word(argv[i], &start, &end, &err)) {
                    fl_error_propagate(errp, err);
                    fl_error_prepend(errp, "%s: range: ", what);
                    return false;
                }
                i++;
            }
            for (int k = 0; k < IMPAIR_IO__COUNT; k++) {
                if (mask & (1u << k)) {
                    p->op[k].error_p = prob;
                    p->op[k].error_errno = errnum;
                    /* "all ... range" leaves flush whole-disk (it has no extent) */
                    bool ranged = k != IMPAIR_IO_FLUSH || mask == (1u << IMPAIR_IO_FLUSH);
                    p->op[k].range_start = ranged ? start : 0;
                    p->op[k].range_end = ranged ? end : 0;
                }
            }
        } else if (!strcmp(w, "corrupt")) {
            impair_prob prob;
            snprintf(what, sizeof what, "%s corrupt", sel);
            if (!(mask & (1u << IMPAIR_IO_READ))) {
                fl_error_setf(errp, EINVAL,
                              "%s: only reads return data to corrupt (use 'read corrupt')", what);
                return false;
            }
            if (i >= argc || !impair_parse_prob(argv[i], &prob, &err)) {
                if (!err) {
                    fl_error_setf(&err, EINVAL, "missing PERCENT (e.g. 'read corrupt 0.1%%')");
                }
                fl_error_propagate(errp, err);
                fl_error_prepend(errp, "%s: ", what);
                return false;
            }
            i++;
            p->op[IMPAIR_IO_READ].corrupt_p = prob;
        } else {
            const char *s = impair_suggest(w, disk_words);
            if (s) {
                fl_error_setf(errp, EINVAL, "'%s' is not a disk parameter; did you mean '%s'?", w,
                              s);
            } else {
                fl_error_setf(errp, EINVAL,
                              "'%s' is not a disk parameter: expected an op (read, write, flush, "
                              "trim, write-zeroes, all) or delay, distribution, error, corrupt",
                              w);
            }
            return false;
        }
    }
    return impair_disk_params_validate(p, errp);
}

bool impair_disk_params_parse(int argc, char **argv, const struct impair_parse_opts *opts,
                              struct impair_disk_params *out, struct fl_error **errp)
{
    /* ':' separates words like a space (not in a distribution's file
     * name, which may hold one) */
    size_t total = 1, max_words = 1;
    for (int i = 0; i < argc; i++) {
        total += strlen(argv[i]) + 1;
        max_words++;
        for (const char *c = argv[i]; *c; c++) {
            max_words += *c == ':';
        }
    }
    char **words = fl_xcalloc(max_words, sizeof(*words));
    char *store = fl_xmalloc(total), *sp = store;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        strcpy(sp, argv[i]);
        bool keep = i > 0 && !strcmp(argv[i - 1], "distribution");
        char *w = sp;
        sp += strlen(argv[i]) + 1;
        for (;;) {
            char *colon = keep ? NULL : strchr(w, ':');
            if (colon) {
                *colon = '\0';
            }
            if (*w) {
                words[n++] = w;
            }
            if (!colon) {
                break;
            }
            w = colon + 1;
        }
    }
    struct impair_disk_params p;
    memset(&p, 0, sizeof p);
    bool ok = parse_disk_words(n, words, opts, &p, errp);
    free(words);
    free(store);
    if (!ok) {
        impair_disk_params_clear(&p);
        return false;
    }
    *out = p;
    return true;
}

void impair_disk_params_format(const struct impair_disk_params *params, struct fl_buf *out)
{
    char a[IMPAIR_FMT_LEN], b[IMPAIR_FMT_LEN];
    size_t start = out->size;
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        const struct impair_disk_op_params *o = &params->op[i];
        const struct impair_delay *d = &o->latency;
        bool has_delay = d->latency_ns || d->jitter_ns || d->corr || d->dist;
        if (!has_delay && !o->error_p && !o->corrupt_p && !o->error_errno && !o->range_end) {
            continue;
        }
        fl_buf_printf(out, "%s%s", out->size > start ? " " : "",
                      impair_io_op_name((enum impair_io_op)i));
        if (has_delay) {
            fl_buf_puts(out, " ");
            impair_format_delay_words(d, out);
        }
        if (o->error_p || o->error_errno || o->range_end) {
            fl_buf_printf(out, " error %s", impair_format_prob(o->error_p, a, sizeof a));
            if (o->error_errno) {
                const char *name = impair_errno_name(o->error_errno);
                if (name) {
                    fl_buf_printf(out, " %s", name);
                } else {
                    fl_buf_printf(out, " %d", o->error_errno);
                }
            }
            if (o->range_start || o->range_end) {
                fl_buf_printf(out, " range %s %s", impair_format_size(o->range_start, a, sizeof a),
                              impair_format_size(o->range_end, b, sizeof b));
            }
        }
        if (o->corrupt_p) {
            fl_buf_printf(out, " corrupt %s", impair_format_prob(o->corrupt_p, a, sizeof a));
        }
    }
    if (!out->data) {
        fl_buf_puts(out, "");
    }
}

/* ------------------------------------------------------------------ */
/* The disk object                                                     */
/* ------------------------------------------------------------------ */

struct disk_config {
    struct impair_disk_params params;
    struct impair_delay_state delay[IMPAIR_IO__COUNT];
};

struct impair_disk {
    struct disk_config cfg;
    struct impair_rng rng;
    struct impair_disk_stats stats;
};

static bool disk_config_build(struct disk_config *cfg, const struct impair_disk_params *params,
                              struct fl_error **errp)
{
    if (!impair_disk_params_validate(params, errp)) {
        return false;
    }
    memset(cfg, 0, sizeof *cfg);
    impair_disk_params_copy(&cfg->params, params);
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        impair_delay_state_init(&cfg->delay[i], &cfg->params.op[i].latency);
    }
    return true;
}

struct impair_disk *impair_disk_create(const struct impair_disk_params *params, uint64_t run_seed,
                                       uint64_t stream_id, struct fl_error **errp)
{
    struct disk_config cfg;
    if (!disk_config_build(&cfg, params, errp)) {
        return NULL;
    }
    struct impair_disk *disk = fl_xcalloc(1, sizeof *disk);
    disk->cfg = cfg;
    impair_rng_seed(&disk->rng, run_seed, stream_id);
    return disk;
}

bool impair_disk_set_params(struct impair_disk *disk, const struct impair_disk_params *params,
                            struct fl_error **errp)
{
    struct disk_config cfg;
    if (!disk_config_build(&cfg, params, errp)) {
        return false;
    }
    for (int i = 0; i < IMPAIR_IO__COUNT; i++) {
        impair_delay_state_carry(&cfg.delay[i], &disk->cfg.delay[i]);
    }
    struct disk_config old = disk->cfg;
    disk->cfg = cfg;
    impair_disk_params_clear(&old.params);
    return true;
}

const struct impair_disk_params *impair_disk_params(const struct impair_disk *disk)
{
    return &disk->cfg.params;
}

void impair_disk_destroy(struct impair_disk *disk)
{
    if (!disk) {
        return;
    }
    impair_disk_params_clear(&disk->cfg.params);
    free(disk);
}

void impair_disk_get_stats(const struct impair_disk *disk, struct impair_disk_stats *stats)
{
    *stats = disk->stats;
}

static bool in_range(const struct impair_disk_op_params *o, uint64_t offset, uint64_t length)
{
    if (!o->range_end) {
        return true;
    }
    uint64_t end = length ? offset + length : offset + 1;
    if (end < offset) {
        end = UINT64_MAX; /* wrapped: the request runs to the end of the address space */
    }
    return offset < o->range_end && end > o->range_start;
}

int impair_disk_decide(struct impair_disk *disk, int64_t now, enum impair_io_op op, uint64_t offset,
                       uint64_t length, struct impair_io_decision *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)op >= IMPAIR_IO__COUNT) {
        out->complete_ns = now;
        return -EINVAL;
    }
    const struct impair_disk_op_params *o = &disk->cfg.params.op[op];
    disk->stats.decided[op]++;
    out->complete_ns = now + impair_delay_sample(&disk->cfg.delay[op], &disk->rng);
    if (o->error_p && in_range(o, offset, length) && impair_chance_inline(&disk->rng, o->error_p)) {
        out->error = -(o->error_errno ? o->error_errno : EIO);
        disk->stats.errors[op]++;
        return 0;
    }
    if (op == IMPAIR_IO_READ && o->corrupt_p && length &&
        impair_chance_inline(&disk->rng, o->corrupt_p)) {
        out->corrupted = true;
        out->corrupt_offset = impair_rng_below(&disk->rng, length);
        out->corrupt_mask = (uint8_t)(1u << impair_pick_u32(impair_u32_inline(&disk->rng), 8));
        disk->stats.corrupted++;
    }
    return 0;
}
