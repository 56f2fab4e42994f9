/* Impairment settings in human units: link parameters (links:, link
 * events) and disk faults (disks' faults:, disk events), with per-key
 * "was set" masks so layers merge key by key. */
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

const char *const tc_link_key_names[LK_NKEYS] = {
    "delay",
    "jitter",
    "delay-correlation",
    "distribution",
    "loss",
    "duplicate",
    "duplicate-correlation",
    "corrupt",
    "corrupt-correlation",
    "reorder",
    "reorder-correlation",
    "gap",
    "rate",
    "packet-overhead",
    "cell-size",
    "cell-overhead",
    "limit",
    "limit-bytes",
    "mtu",
};

static const char *const loss_keys[] = {"model", "p",   "correlation", "r",   "1-h", "1-k",
                                        "p13",   "p31", "p32",         "p23", "p14", NULL};
static const char *const loss_models[] = {"random", "gilbert-elliott", "4-state"};

static bool parse_dist(struct tc *c, const struct ty_node *n, struct impair_delay *d)
{
    if (n && n->type == TY_SCALAR && !ty_is_null(n)) {
        enum impair_dist dist;
        if (strcmp(n->str, "table") && impair_dist_from_name(n->str, &dist)) {
            d->dist = dist;
            return true;
        }
        if (strchr(n->str, '/') || strstr(n->str, ".dist")) {
            char *path = tc_host_path(c, n, n->str, false);
            if (!path) {
                return false;
            }
            struct fl_error *e = NULL;
            char *text = fl_read_file(path, NULL, &e);
            struct impair_dist_table *t = text ? impair_dist_table_parse(text, path, &e) : NULL;
            free(text);
            free(path);
            if (!t) {
                tc_err(c, n, "%s", e ? e->msg : "cannot read the table");
                fl_error_free(e);
                return false;
            }
            impair_dist_table_unref(d->table);
            d->dist = IMPAIR_DIST_TABLE;
            d->table = t;
            return true;
        }
    }
    static const char *const names[] = {"uniform", "normal", "pareto", "paretonormal"};
    const char *sugg = n && n->type == TY_SCALAR ? tc_suggest(n->str, names, 4) : NULL;
    if (sugg) {
        tc_err_val(c, n,
                   "is not a distribution; did you mean '%s'? (valid: uniform, normal, pareto, "
                   "paretonormal, or the path of a netem .dist table)",
                   sugg);
    } else {
        tc_err_val(c, n,
                   "is not a distribution (valid: uniform, normal, pareto, paretonormal, "
                   "or the path of a netem .dist table)");
    }
    return false;
}

static bool parse_loss(struct tc *c, const struct ty_node *n, struct impair_loss *l)
{
    if (n && n->type == TY_SCALAR) {
        if (!tc_prob(c, n, &l->p)) {
            return false;
        }
        l->model = l->p ? IMPAIR_LOSS_RANDOM : IMPAIR_LOSS_NONE;
        return true;
    }
    if (!tc_check_map(c, n, loss_keys,
                      "loss (e.g. 1% or {model: gilbert-elliott, p: 1%, r: 30%})")) {
        return false;
    }
    int model = 0;
    const struct ty_node *mn = ty_map_get(n, "model");
    bool ok = true;
    if (mn) {
        size_t m = tc_path_key(c, "model");
        ok = tc_enum(c, mn, loss_models, 3, &model);
        tc_path_pop(c, m);
        if (!ok) {
            return false;
        }
    }
    static const char *const by_model[3][6] = {
        {"p", "correlation"},
        {"p", "r", "1-h", "1-k"},
        {"p13", "p31", "p32", "p23", "p14"},
    };
    /* Keys of another model are mistakes worth naming. */
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key;
        if (k->type != TY_SCALAR || !strcmp(k->str, "model")) {
            continue;
        }
        bool known = false, here = false;
        for (size_t j = 0; loss_keys[j]; j++) {
            known = known || !strcmp(loss_keys[j], k->str);
        }
        for (size_t j = 0; j < 6 && by_model[model][j]; j++) {
            here = here || !strcmp(by_model[model][j], k->str);
        }
        if (known && !here) {
            size_t m = tc_path_keyn(c, k);
            tc_err(c, k,
                   "key '%s' does not apply to loss model '%s' (its keys: %s%s%s%s%s%s%s%s%s)",
                   k->str, loss_models[model], by_model[model][0], by_model[model][1] ? ", " : "",
                   by_model[model][1] ? by_model[model][1] : "", by_model[model][2] ? ", " : "",
                   by_model[model][2] ? by_model[model][2] : "", by_model[model][3] ? ", " : "",
                   by_model[model][3] ? by_model[model][3] : "", by_model[model][4] ? ", " : "",
                   by_model[model][4] ? by_model[model][4] : "");
            tc_path_pop(c, m);
            ok = false;
        }
    }
#define GETP(key, field, deflt)                                                                    \
    do {                                                                                           \
        const struct ty_node *v_ = ty_map_get(n, key);                                             \
        (field) = (deflt);                                                                         \
        if (v_) {                                                                                  \
            size_t m_ = tc_path_key(c, key);                                                       \
            ok = tc_prob(c, v_, &(field)) && ok;                                                   \
            tc_path_pop(c, m_);                                                                    \
        }                                                                                          \
    } while (0)
    const struct ty_node *first = ty_map_get(n, by_model[model][0]);
    if (!first) {
        tc_err(c, n, "loss model '%s' needs '%s'", loss_models[model], by_model[model][0]);
        return false;
    }
    switch (model) {
    case 0:
        l->model = IMPAIR_LOSS_RANDOM;
        GETP("p", l->p, 0);
        GETP("correlation", l->corr, 0);
        break;
    case 1:
        l->model = IMPAIR_LOSS_GEMODEL;
        GETP("p", l->ge.p, 0);
        GETP("r", l->ge.r, IMPAIR_PROB_MAX - l->ge.p);
        GETP("1-h", l->ge.one_minus_h, IMPAIR_PROB_MAX);
        GETP("1-k", l->ge.one_minus_k, 0);
        break;
    default:
        l->model = IMPAIR_LOSS_STATE;
        GETP("p13", l->state.p13, 0);
        GETP("p31", l->state.p31, IMPAIR_PROB_MAX - l->state.p13);
        GETP("p32", l->state.p32, 0);
        GETP("p23", l->state.p23, IMPAIR_PROB_MAX);
        GETP("p14", l->state.p14, 0);
        break;
    }
#undef GETP
    return ok;
}

/* The netem short form: `wan: "delay 40ms 10ms distribution normal loss 2%"`
 * (impair's tc-netem words).  Each word sets its whole group, like
 * `tc qdisc change` would; groups not mentioned stay as the layers below
 * set them. */
static char *read_table(void *arg, const char *path, struct fl_error **errp)
{
    const struct tc *c = arg;
    char *full = path[0] == '/' ? fl_xstrdup(path) : fl_xasprintf("%s/%s", c->base_dir, path);
    char *text = fl_read_file(full, NULL, errp);
    free(full);
    return text;
}

static const struct {
    const char *word;
    uint32_t mask;
} netem_words[] = {
    {"delay", LK_DELAY | LK_JITTER | LK_DELAY_CORR | LK_DIST},
    {"distribution", LK_DIST},
    {"loss", LK_LOSS},
    {"drop", LK_LOSS},
    {"duplicate", LK_DUP | LK_DUP_CORR},
    {"corrupt", LK_CORRUPT | LK_CORRUPT_CORR},
    {"reorder", LK_REORDER | LK_REORDER_CORR | LK_GAP},
    {"gap", LK_GAP},
    {"rate", LK_RATE | LK_PKT_OVH | LK_CELL | LK_CELL_OVH},
    {"limit", LK_LIMIT},
    {"limit-bytes", LK_LIMIT_BYTES},
    {"mtu", LK_MTU},
};

static bool link_words(struct tc *c, const struct ty_node *n, struct tc_link_settings *out)
{
    if (strlen(n->str) != n->len) {
        tc_err_val(c, n, "contains a NUL byte");
        return false;
    }
    struct impair_parse_opts opts = {.read_file = read_table, .arg = c};
    struct fl_error *e = NULL;
    if (!impair_link_params_parse_string(n->str, &opts, &out->p, &e)) {
        tc_err_val(c, n, "is not a netem description: %s", e ? e->msg : "invalid");
        fl_error_free(e);
        impair_link_params_clear(&out->p);
        return false;
    }
    char *copy = fl_xstrdup(n->str);
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
        if (!strcmp(w, "partition")) {
            tc_err_val(c, n,
                       "cuts the link for the whole run; partitions are timeline events "
                       "(e.g. - {at: 10s, partition: [[n1], [n2]]})");
            free(copy);
            impair_link_params_clear(&out->p);
            return false;
        }
        for (size_t i = 0; i < FL_ARRAY_LEN(netem_words); i++) {
            if (!strcmp(w, netem_words[i].word)) {
                out->mask |= netem_words[i].mask;
            }
        }
    }
    free(copy);
    return true;
}

bool tc_link_settings(struct tc *c, const struct ty_node *n, struct tc_link_settings *out)
{
    memset(out, 0, sizeof(*out));
    static const char *allowed[LK_NKEYS + 2];
    for (size_t i = 0; i < LK_NKEYS; i++) {
        allowed[i] = tc_link_key_names[i];
    }
    allowed[LK_NKEYS] = "loss-correlation";
    allowed[LK_NKEYS + 1] = NULL;
    if (n && ty_is_null(n)) {
        return true; /* nothing set */
    }
    if (n && n->type == TY_SCALAR) {
        return link_words(c, n, out);
    }
    if (!tc_check_map(c, n, allowed,
                      "link parameters (e.g. {delay: 20ms, loss: 1%} or \"delay 20ms loss 1%\")")) {
        return false;
    }
    bool ok = true;
    struct impair_link_params *p = &out->p;
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        if (k->type != TY_SCALAR) {
            continue;
        }
        int key = -1;
        for (int j = 0; j < LK_NKEYS; j++) {
            if (!strcmp(k->str, tc_link_key_names[j])) {
                key = j;
            }
        }
        bool is_loss_corr = !strcmp(k->str, "loss-correlation");
        if (key < 0 && !is_loss_corr) {
            continue;
        }
        size_t m = tc_path_keyn(c, k);
        bool r = true;
        uint64_t u = 0;
        if (is_loss_corr) {
            /* Merged into loss below. */
        } else {
            switch (1u << key) {
            case LK_DELAY:
                r = tc_duration(c, v, &p->delay.latency_ns);
                break;
            case LK_JITTER:
                r = tc_duration(c, v, &p->delay.jitter_ns);
                break;
            case LK_DELAY_CORR:
                r = tc_prob(c, v, &p->delay.corr);
                break;
            case LK_DIST:
                r = parse_dist(c, v, &p->delay);
                break;
            case LK_LOSS:
                r = parse_loss(c, v, &p->loss);
                break;
            case LK_DUP:
                r = tc_prob(c, v, &p->duplicate.p);
                break;
            case LK_DUP_CORR:
                r = tc_prob(c, v, &p->duplicate.corr);
                break;
            case LK_CORRUPT:
                r = tc_prob(c, v, &p->corrupt.p);
                break;
            case LK_CORRUPT_CORR:
                r = tc_prob(c, v, &p->corrupt.corr);
                break;
            case LK_REORDER:
                r = tc_prob(c, v, &p->reorder.p);
                break;
            case LK_REORDER_CORR:
                r = tc_prob(c, v, &p->reorder.corr);
                break;
            case LK_GAP:
                r = tc_uint(c, v, 0, UINT32_MAX, &u);
                p->reorder.gap = (uint32_t)u;
                break;
            case LK_RATE:
                r = tc_rate(c, v, &p->rate.bits_per_s);
                break;
            case LK_PKT_OVH: {
                int64_t s = 0;
                r = tc_int(c, v, -65535, 65535, &s);
                p->rate.packet_overhead = (int32_t)s;
                break;
            }
            case LK_CELL:
                r = tc_size(c, v, &u);
                if (r && u > 65535) {
                    tc_err_val(c, v, "is too large a cell size (valid: 0..65535 bytes)");
                    r = false;
                }
                p->rate.cell_size = (uint32_t)u;
                break;
            case LK_CELL_OVH: {
                int64_t s = 0;
                r = tc_int(c, v, -65535, 65535, &s);
                p->rate.cell_overhead = (int32_t)s;
                break;
            }
            case LK_LIMIT:
                r = tc_uint(c, v, 0, UINT32_MAX, &u);
                p->limit_frames = (uint32_t)u;
                break;
            case LK_LIMIT_BYTES:
                r = tc_size(c, v, &p->limit_bytes);
                break;
            case LK_MTU:
                r = tc_size(c, v, &u);
                if (r && (u < 68 || u > 65535)) {
                    tc_err_val(c, v, "is not a link MTU (valid: 68..65535 bytes)");
                    r = false;
                }
                p->mtu = (uint32_t)u;
                break;
            }
            if (r) {
                out->mask |= 1u << key;
            }
        }
        tc_path_pop(c, m);
        ok = ok && r;
    }
    const struct ty_node *lc = ty_map_get(n, "loss-correlation");
    if (lc) {
        size_t m = tc_path_key(c, "loss-correlation");
        impair_prob corr = 0;
        if (tc_prob(c, lc, &corr)) {
            if (!(out->mask & LK_LOSS) || p->loss.model != IMPAIR_LOSS_RANDOM) {
                tc_err(c, lc,
                       "loss-correlation applies to a random loss given beside it "
                       "(e.g. loss: 1%%, loss-correlation: 25%%)");
                ok = false;
            } else {
                p->loss.corr = corr;
            }
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    return ok;
}

void tc_link_apply(struct impair_link_params *d, const struct tc_link_settings *s)
{
    const struct impair_link_params *p = &s->p;
    uint32_t m = s->mask;
    if (m & LK_DELAY) {
        d->delay.latency_ns = p->delay.latency_ns;
    }
    if (m & LK_JITTER) {
        d->delay.jitter_ns = p->delay.jitter_ns;
    }
    if (m & LK_DELAY_CORR) {
        d->delay.corr = p->delay.corr;
    }
    if (m & LK_DIST) {
        impair_dist_table_unref(d->delay.table);
        d->delay.dist = p->delay.dist;
        d->delay.table = p->delay.table ? impair_dist_table_ref(p->delay.table) : NULL;
    }
    if (m & LK_LOSS) {
        d->loss = p->loss;
    }
    if (m & LK_DUP) {
        d->duplicate.p = p->duplicate.p;
    }
    if (m & LK_DUP_CORR) {
        d->duplicate.corr = p->duplicate.corr;
    }
    if (m & LK_CORRUPT) {
        d->corrupt.p = p->corrupt.p;
    }
    if (m & LK_CORRUPT_CORR) {
        d->corrupt.corr = p->corrupt.corr;
    }
    if (m & LK_REORDER) {
        d->reorder.p = p->reorder.p;
    }
    if (m & LK_REORDER_CORR) {
        d->reorder.corr = p->reorder.corr;
    }
    if (m & LK_GAP) {
        d->reorder.gap = p->reorder.gap;
    }
    if (m & LK_RATE) {
        d->rate.bits_per_s = p->rate.bits_per_s;
    }
    if (m & LK_PKT_OVH) {
        d->rate.packet_overhead = p->rate.packet_overhead;
    }
    if (m & LK_CELL) {
        d->rate.cell_size = p->rate.cell_size;
    }
    if (m & LK_CELL_OVH) {
        d->rate.cell_overhead = p->rate.cell_overhead;
    }
    if (m & LK_LIMIT) {
        d->limit_frames = p->limit_frames;
    }
    if (m & LK_LIMIT_BYTES) {
        d->limit_bytes = p->limit_bytes;
    }
    if (m & LK_MTU) {
        d->mtu = p->mtu;
    }
}

/* ------------------------------------------------------------------ */
/* Disk faults                                                         */
/* ------------------------------------------------------------------ */

static const char *const op_keys[] = {
    "latency", "jitter", "correlation", "distribution", "error", "errno", "range", "corrupt", NULL};

static bool parse_range(struct tc *c, const struct ty_node *n, uint64_t *lo, uint64_t *hi)
{
    if (!n || n->type != TY_SEQ || n->n_items != 2) {
        tc_err_val(c, n, "is not a byte range: expected [START, END] (e.g. [0, 1GiB])");
        return false;
    }
    size_t m = tc_path_index(c, 0);
    bool ok = tc_size(c, n->items[0], lo);
    tc_path_pop(c, m);
    m = tc_path_index(c, 1);
    ok = tc_size(c, n->items[1], hi) && ok;
    tc_path_pop(c, m);
    if (ok && *hi <= *lo) {
        tc_err(c, n, "byte range [%llu, %llu) is empty: END must be above START",
               (unsigned long long)*lo, (unsigned long long)*hi);
        return false;
    }
    return ok;
}

/* Parses op keys of `n` (skipping others) into op settings. */
static bool parse_op_keys(struct tc *c, const struct ty_node *n, enum impair_io_op only_op,
                          bool all_ops, struct tc_disk_settings *out)
{
    bool ok = true;
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        if (k->type != TY_SCALAR) {
            continue;
        }
        int key = -1;
        for (int j = 0; op_keys[j]; j++) {
            if (!strcmp(k->str, op_keys[j])) {
                key = j;
            }
        }
        if (key < 0) {
            continue;
        }
        size_t m = tc_path_keyn(c, k);
        struct impair_disk_op_params tmp = {0};
        bool r = true;
        uint32_t bit = 1u << key;
        switch (bit) {
        case DK_LATENCY:
            r = tc_duration(c, v, &tmp.latency.latency_ns);
            break;
        case DK_JITTER:
            r = tc_duration(c, v, &tmp.latency.jitter_ns);
            break;
        case DK_CORR:
            r = tc_prob(c, v, &tmp.latency.corr);
            break;
        case DK_DIST:
            r = parse_dist(c, v, &tmp.latency);
            break;
        case DK_ERROR:
            r = tc_prob(c, v, &tmp.error_p);
            break;
        case DK_ERRNO: {
            struct fl_error *e = NULL;
            if (v->type != TY_SCALAR || !impair_parse_errno(v->str, &tmp.error_errno, &e)) {
                if (e) {
                    tc_err(c, v, "%s", e->msg);
                    fl_error_free(e);
                } else {
                    tc_err_val(c, v, "is not an errno name (e.g. EIO, ENOSPC)");
                }
                r = false;
            }
            break;
        }
        case DK_RANGE:
            if (all_ops || only_op != IMPAIR_IO_FLUSH) {
                r = parse_range(c, v, &tmp.range_start, &tmp.range_end);
            } else {
                tc_err(c, k,
                       "a flush has no byte range; 'range' applies to read, write, trim "
                       "and write-zeroes");
                r = false;
            }
            break;
        case DK_CORRUPT:
            if (all_ops || only_op == IMPAIR_IO_READ) {
                r = tc_prob(c, v, &tmp.corrupt_p);
            } else {
                tc_err(c, k,
                       "'corrupt' applies to reads only (bit flips in returned data); "
                       "put it under 'read:' or at the top of the faults");
                r = false;
            }
            break;
        }
        tc_path_pop(c, m);
        if (!r) {
            ok = false;
            if (bit == DK_DIST) {
                impair_dist_table_unref(tmp.latency.table);
            }
            continue;
        }
        for (int op = 0; op < IMPAIR_IO__COUNT; op++) {
            if (!all_ops && op != (int)only_op) {
                continue;
            }
            if (all_ops && bit == DK_RANGE && op == IMPAIR_IO_FLUSH) {
                continue;
            }
            if (all_ops && bit == DK_CORRUPT && op != IMPAIR_IO_READ) {
                continue;
            }
            struct impair_disk_op_params *d = &out->p.op[op];
            switch (bit) {
            case DK_LATENCY:
                d->latency.latency_ns = tmp.latency.latency_ns;
                break;
            case DK_JITTER:
                d->latency.jitter_ns = tmp.latency.jitter_ns;
                break;
            case DK_CORR:
                d->latency.corr = tmp.latency.corr;
                break;
            case DK_DIST:
                impair_dist_table_unref(d->latency.table);
                d->latency.dist = tmp.latency.dist;
                d->latency.table =
                    tmp.latency.table ? impair_dist_table_ref(tmp.latency.table) : NULL;
                break;
            case DK_ERROR:
                d->error_p = tmp.error_p;
                break;
            case DK_ERRNO:
                d->error_errno = tmp.error_errno;
                break;
            case DK_RANGE:
                d->range_start = tmp.range_start;
                d->range_end = tmp.range_end;
                break;
            case DK_CORRUPT:
                d->corrupt_p = tmp.corrupt_p;
                break;
            }
            out->mask[op] |= bit;
        }
        if (bit == DK_DIST) {
            impair_dist_table_unref(tmp.latency.table);
        }
    }
    return ok;
}

bool tc_disk_settings(struct tc *c, const struct ty_node *n, const char *const *extra,
                      struct tc_disk_settings *out)
{
    memset(out, 0, sizeof(*out));
    const char *allowed[32];
    size_t na = 0;
    for (size_t i = 0; op_keys[i]; i++) {
        allowed[na++] = op_keys[i];
    }
    for (int op = 0; op < IMPAIR_IO__COUNT; op++) {
        allowed[na++] = impair_io_op_name((enum impair_io_op)op);
    }
    for (size_t i = 0; extra && extra[i] && na < 31; i++) {
        allowed[na++] = extra[i];
    }
    allowed[na] = NULL;
    if (n && ty_is_null(n)) {
        return true;
    }
    if (!tc_check_map(c, n, allowed,
                      "disk faults (e.g. {latency: 2ms, write: {error: 1%, errno: EIO}})")) {
        return false;
    }
    /* Keys for every op first, then the per-op blocks override them. */
    bool ok = parse_op_keys(c, n, IMPAIR_IO_READ, true, out);
    for (int op = 0; op < IMPAIR_IO__COUNT; op++) {
        const char *name = impair_io_op_name((enum impair_io_op)op);
        const struct ty_node *v = ty_map_get(n, name);
        if (!v) {
            continue;
        }
        size_t m = tc_path_key(c, name);
        if (ty_is_null(v)) {
            tc_path_pop(c, m);
            continue;
        }
        if (tc_check_map(c, v, op_keys, "faults of one request type")) {
            ok = parse_op_keys(c, v, (enum impair_io_op)op, false, out) && ok;
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    return ok;
}

void tc_disk_apply(struct impair_disk_params *dst, const struct tc_disk_settings *s)
{
    for (int op = 0; op < IMPAIR_IO__COUNT; op++) {
        const struct impair_disk_op_params *p = &s->p.op[op];
        struct impair_disk_op_params *d = &dst->op[op];
        uint32_t m = s->mask[op];
        if (m & DK_LATENCY) {
            d->latency.latency_ns = p->latency.latency_ns;
        }
        if (m & DK_JITTER) {
            d->latency.jitter_ns = p->latency.jitter_ns;
        }
        if (m & DK_CORR) {
            d->latency.corr = p->latency.corr;
        }
        if (m & DK_DIST) {
            impair_dist_table_unref(d->latency.table);
            d->latency.dist = p->latency.dist;
            d->latency.table = p->latency.table ? impair_dist_table_ref(p->latency.table) : NULL;
        }
        if (m & DK_ERROR) {
            d->error_p = p->error_p;
        }
        if (m & DK_ERRNO) {
            d->error_errno = p->error_errno;
        }
        if (m & DK_RANGE) {
            d->range_start = p->range_start;
            d->range_end = p->range_end;
        }
        if (m & DK_CORRUPT) {
            d->corrupt_p = p->corrupt_p;
        }
    }
}
