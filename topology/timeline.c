/* timeline: and checks: — parse each item, resolve its time (at, after,
 * every), expand it into concrete events, then simulate the node states
 * along the sorted static timeline to find contradictions. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"

static const char *const kind_keys[] = {
    "partition", "isolate", "heal",  "link", "link-clear", "crash", "restart", "shutdown", "pause",
    "resume",    "reboot",  "clock", "disk", "disk-clear", "exec",  "mark",    "wait",     NULL,
};
static const enum topo_event_kind kind_of_key[] = {
    TOPO_EV_PARTITION, TOPO_EV_PARTITION, TOPO_EV_HEAL,     TOPO_EV_LINK_SET,   TOPO_EV_LINK_CLEAR,
    TOPO_EV_CRASH,     TOPO_EV_RESTART,   TOPO_EV_SHUTDOWN, TOPO_EV_PAUSE,      TOPO_EV_RESUME,
    TOPO_EV_REBOOT,    TOPO_EV_CLOCK,     TOPO_EV_DISK_SET, TOPO_EV_DISK_CLEAR, TOPO_EV_EXEC,
    TOPO_EV_MARK,      TOPO_EV_WAIT,
};
static const char *const timing_keys[] = {"at",    "after",    "every", "for",
                                          "times", "duration", "name"};

#define DEFAULT_EXEC_TIMEOUT  (30 * FL_NS_PER_SEC)
#define DEFAULT_WAIT_TIMEOUT  (60 * FL_NS_PER_SEC)
#define DEFAULT_CHECK_TIMEOUT (10 * FL_NS_PER_SEC)
#define DEFAULT_INTERVAL      (1 * FL_NS_PER_SEC)

char *tc_format_duration(int64_t ns)
{
    char buf[IMPAIR_FMT_LEN];
    impair_format_duration(ns, buf, sizeof(buf));
    return fl_xstrdup(buf);
}

void tc_item_clear(struct tc_item *it)
{
    free(it->name);
    free(it->after_name);
    free(it->nodes);
    free(it->fixed_cuts.v);
    free(it->fixed_label);
    free(it->heal_items);
    for (size_t i = 0; i < it->n_sels; i++) {
        free(it->sels[i].text);
        if (it->lsets) {
            impair_link_params_clear(&it->lsets[i].p);
        }
    }
    free(it->sels);
    free(it->lsets);
    impair_disk_params_clear(&it->dset.p);
    free(it->command);
    topo_expect_clear(&it->expect);
    free(it->mark);
}

/* ------------------------------------------------------------------ */
/* Expectations (exec, checks)                                         */
/* ------------------------------------------------------------------ */

bool tc_parse_expect(struct tc *c, const struct ty_node *map, struct topo_expect *out)
{
    bool ok = true;
    out->exit = TOPO_EXIT_EXACT;
    out->code = 0;
    const struct ty_node *x = ty_map_get(map, "exit");
    if (x) {
        size_t m = tc_path_key(c, "exit");
        if (x->type == TY_SCALAR && !strcmp(x->str, "nonzero")) {
            out->exit = TOPO_EXIT_NONZERO;
        } else if (x->type == TY_SCALAR && !strcmp(x->str, "any")) {
            out->exit = TOPO_EXIT_ANY;
        } else {
            uint64_t u;
            if (x->type == TY_SCALAR && !ty_is_null(x) && strspn(x->str, "0123456789") == x->len &&
                tc_uint(c, x, 0, 255, &u)) {
                out->code = (int)u;
            } else {
                if (x->type != TY_SCALAR || strspn(x->str, "0123456789") != x->len ||
                    ty_is_null(x)) {
                    tc_err_val(c, x,
                               "is not an expected exit status (valid: 0..255, nonzero, "
                               "any)");
                }
                ok = false;
            }
        }
        tc_path_pop(c, m);
    }
    x = ty_map_get(map, "output");
    if (x) {
        size_t m = tc_path_key(c, "output");
        const char *re;
        if (tc_string(c, x, &re)) {
            regex_t rx;
            int rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char msg[256];
                regerror(rc, &rx, msg, sizeof(msg));
                tc_err_val(c, x, "is not a POSIX extended regular expression: %s", msg);
                ok = false;
            } else {
                regfree(&rx);
                out->output = fl_xstrdup(re);
            }
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* Payloads                                                            */
/* ------------------------------------------------------------------ */

static const char *const shape_names[] = {
#define N(name, str) str,
    TOPO_PARTITION_SHAPES(N)
#undef N
};
static const char *const random_shape_names[] = {"halves", "majority-minority", "isolate", "ring",
                                                 "bridge"};
static const char *const partition_keys[] = {"groups", "shape", "nodes", "node",
                                             "from",   "to",    NULL};

/* The nodes listed, as a group; each node at most once across groups. */
static bool parse_groups(struct tc *c, struct tc_item *it, const struct ty_node *g)
{
    if (g->type != TY_SEQ || g->n_items < 2) {
        tc_err_val(c, g,
                   "is not a list of at least two groups of nodes "
                   "(e.g. [[n1, n2], [n3]])");
        return false;
    }
    size_t total = 0;
    for (size_t i = 0; i < g->n_items; i++) {
        total += g->items[i]->type == TY_SEQ ? g->items[i]->n_items : 1;
    }
    uint32_t *seen = fl_xcalloc(c->s->n_nodes ? c->s->n_nodes : 1, sizeof(*seen));
    const struct ty_node **where = fl_xcalloc(c->s->n_nodes ? c->s->n_nodes : 1, sizeof(*where));
    uint32_t **groups = fl_xcalloc(g->n_items, sizeof(*groups));
    size_t *lens = fl_xcalloc(g->n_items, sizeof(*lens));
    bool ok = true;
    for (size_t i = 0; i < g->n_items; i++) {
        size_t m = tc_path_index(c, i);
        const struct ty_node *grp = g->items[i];
        groups[i] = fl_xcalloc(total ? total : 1, sizeof(uint32_t));
        const struct ty_node *const *members =
            grp->type == TY_SEQ ? (const struct ty_node *const *)grp->items : &grp;
        size_t nm = grp->type == TY_SEQ ? grp->n_items : 1;
        if (grp->type == TY_MAP || (grp->type == TY_SEQ && !nm)) {
            tc_err_val(c, grp, "is not a group of nodes (a node or a non-empty list of nodes)");
            ok = false;
            nm = 0;
        }
        for (size_t j = 0; j < nm; j++) {
            size_t mj = grp->type == TY_SEQ ? tc_path_index(c, j) : c->path.size;
            int r = tc_node_ref(c, members[j]);
            if (r < 0) {
                ok = false;
            } else if (seen[r]) {
                char *see = tc_see(c, tc_loc(where[r]));
                tc_err_val(c, members[j],
                           "is in two groups of one partition (also at %s); a node belongs to "
                           "one side",
                           see);
                free(see);
                ok = false;
            } else {
                seen[r] = 1;
                where[r] = members[j];
                groups[i][lens[i]++] = (uint32_t)r;
            }
            tc_path_pop(c, mj);
        }
        tc_path_pop(c, m);
    }
    if (ok) {
        struct fl_buf b = {0};
        for (size_t i = 0; i < g->n_items; i++) {
            for (size_t j = 0; j < g->n_items; j++) {
                if (i != j) {
                    tc_cuts_between(&it->fixed_cuts, groups[i], lens[i], groups[j], lens[j], false);
                }
            }
            if (i) {
                fl_buf_puts(&b, " | ");
            }
            for (size_t k = 0; k < lens[i]; k++) {
                fl_buf_printf(&b, "%s%s", k ? " " : "", c->s->nodes[groups[i][k]].name);
            }
        }
        tc_cuts_sort(&it->fixed_cuts);
        it->fixed_label = fl_buf_steal(&b);
        it->shape = TOPO_SHAPE_GROUPS;
    }
    for (size_t i = 0; i < g->n_items; i++) {
        free(groups[i]);
    }
    free(groups);
    free(lens);
    free(seen);
    free(where);
    return ok;
}

static bool candidates(struct tc *c, struct tc_item *it, const struct ty_node *nodes)
{
    if (nodes) {
        size_t m = tc_path_key(c, "nodes");
        it->nodes = tc_node_list(c, nodes, &it->n_nodes);
        tc_path_pop(c, m);
        return it->nodes != NULL;
    }
    it->n_nodes = c->s->n_nodes;
    it->nodes = fl_xcalloc(it->n_nodes ? it->n_nodes : 1, sizeof(uint32_t));
    for (size_t i = 0; i < it->n_nodes; i++) {
        it->nodes[i] = (uint32_t)i;
    }
    return true;
}

static bool shape_fits(struct tc *c, struct tc_item *it, const struct ty_node *at)
{
    size_t need = tc_shape_min_nodes(it->shape);
    if (it->n_nodes < need) {
        tc_err(c, at, "shape '%s' needs at least %zu nodes, but it would apply to %zu",
               shape_names[it->shape], need, it->n_nodes);
        return false;
    }
    return true;
}

static bool parse_partition(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    it->isolate_node = -1;
    if (v->type == TY_SEQ) {
        return parse_groups(c, it, v);
    }
    if (v->type == TY_SCALAR && !ty_is_null(v)) {
        int e;
        if (!tc_enum(c, v, random_shape_names, FL_ARRAY_LEN(random_shape_names), &e)) {
            return false;
        }
        for (int i = 0; i < TOPO_SHAPE__COUNT; i++) {
            if (!strcmp(shape_names[i], random_shape_names[e])) {
                it->shape = (enum topo_partition_shape)i;
            }
        }
        return candidates(c, it, NULL) && shape_fits(c, it, v);
    }
    if (!tc_check_map(c, v, partition_keys,
                      "a partition (groups, shape + nodes, isolate node, or from/to)")) {
        return false;
    }
    const struct ty_node *groups = ty_map_get(v, "groups"), *shape = ty_map_get(v, "shape"),
                         *nodes = ty_map_get(v, "nodes"), *node = ty_map_get(v, "node"),
                         *from = ty_map_get(v, "from"), *to = ty_map_get(v, "to");
    int forms = !!groups + !!shape + !!(from || to);
    if (forms != 1) {
        tc_err(c, v,
               "a partition is given by exactly one of: 'groups' (explicit sides), "
               "'shape' (halves, majority-minority, isolate, ring, bridge) or 'from'/'to' "
               "(one-way)");
        return false;
    }
    if (groups) {
        if (nodes || node) {
            tc_err(c, nodes ? nodes : node, "'nodes'/'node' apply to a 'shape', not to 'groups'");
            return false;
        }
        size_t m = tc_path_key(c, "groups");
        bool ok = parse_groups(c, it, groups);
        tc_path_pop(c, m);
        return ok;
    }
    if (from || to) {
        if (!from || !to) {
            tc_err(c, v,
                   "a one-way partition needs both 'from' and 'to' "
                   "(frames from 'from' to 'to' are dropped)");
            return false;
        }
        if (nodes || node) {
            tc_err(c, nodes ? nodes : node, "'nodes'/'node' apply to a 'shape', not to from/to");
            return false;
        }
        size_t nf = 0, nt = 0;
        size_t m = tc_path_key(c, "from");
        uint32_t *f = tc_node_list(c, from, &nf);
        tc_path_pop(c, m);
        m = tc_path_key(c, "to");
        uint32_t *t = tc_node_list(c, to, &nt);
        bool ok = f && t;
        for (size_t i = 0; ok && i < nf; i++) {
            for (size_t j = 0; ok && j < nt; j++) {
                if (f[i] == t[j]) {
                    tc_err(c, to,
                           "node '%s' is on both sides of a one-way partition (see 'from' "
                           "at %u:%u)",
                           c->s->nodes[f[i]].name, from->line, from->col);
                    ok = false;
                }
            }
        }
        tc_path_pop(c, m);
        if (ok) {
            tc_cuts_between(&it->fixed_cuts, f, nf, t, nt, false);
            tc_cuts_sort(&it->fixed_cuts);
            struct fl_buf b = {0};
            for (size_t i = 0; i < nf; i++) {
                fl_buf_printf(&b, "%s%s", i ? " " : "", c->s->nodes[f[i]].name);
            }
            fl_buf_puts(&b, " -> ");
            for (size_t i = 0; i < nt; i++) {
                fl_buf_printf(&b, "%s%s", i ? " " : "", c->s->nodes[t[i]].name);
            }
            it->fixed_label = fl_buf_steal(&b);
            it->shape = TOPO_SHAPE_ONE_WAY;
        }
        free(f);
        free(t);
        return ok;
    }
    size_t m = tc_path_key(c, "shape");
    int e;
    bool ok = tc_enum(c, shape, random_shape_names, FL_ARRAY_LEN(random_shape_names), &e);
    tc_path_pop(c, m);
    if (!ok) {
        return false;
    }
    for (int i = 0; i < TOPO_SHAPE__COUNT; i++) {
        if (!strcmp(shape_names[i], random_shape_names[e])) {
            it->shape = (enum topo_partition_shape)i;
        }
    }
    if (!candidates(c, it, nodes)) {
        return false;
    }
    if (node) {
        m = tc_path_key(c, "node");
        if (it->shape != TOPO_SHAPE_ISOLATE) {
            tc_err(c, node, "'node' names the node of shape 'isolate'; shape '%s' takes 'nodes'",
                   shape_names[it->shape]);
            ok = false;
        } else {
            it->isolate_node = tc_node_ref(c, node);
            ok = it->isolate_node >= 0;
            bool in = false;
            for (size_t i = 0; ok && i < it->n_nodes; i++) {
                in = in || it->nodes[i] == (uint32_t)it->isolate_node;
            }
            if (ok && !in) {
                tc_err_val(c, node, "is not among the partition's 'nodes'");
                ok = false;
            }
        }
        tc_path_pop(c, m);
    }
    return ok && shape_fits(c, it, shape);
}

static bool parse_heal(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    if (ty_is_null(v) || (v->type == TY_SCALAR && !strcmp(v->str, "all"))) {
        it->heal_all = true;
        return true;
    }
    const struct ty_node *const *names =
        v->type == TY_SEQ ? (const struct ty_node *const *)v->items : &v;
    size_t n = v->type == TY_SEQ ? v->n_items : 1;
    if (v->type == TY_MAP || !n) {
        tc_err_val(c, v,
                   "is not what to heal (valid: all, or the name of a partition event, or "
                   "a list of names)");
        return false;
    }
    it->heal_items = fl_xcalloc(n, sizeof(size_t));
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        size_t m = v->type == TY_SEQ ? tc_path_index(c, i) : c->path.size;
        const char *s;
        if (!tc_string(c, names[i], &s)) {
            ok = false;
        } else {
            /* Resolved against item names once all items are known. */
            size_t found = SIZE_MAX;
            const char **cands = fl_xcalloc(c->n_items + 1, sizeof(*cands));
            size_t nc = 0;
            for (size_t j = 0; j < c->n_items; j++) {
                if (c->items[j].name && c->items[j].kind == TOPO_EV_PARTITION) {
                    cands[nc++] = c->items[j].name;
                    if (!strcmp(c->items[j].name, s)) {
                        found = j;
                    }
                }
            }
            if (found == SIZE_MAX) {
                const char *sugg = tc_suggest(s, cands, nc);
                if (sugg) {
                    tc_err_val(c, names[i],
                               "is not the name of a partition event; did you mean '%s'?", sugg);
                } else {
                    tc_err_val(c, names[i],
                               "is not the name of a partition event (give the partition a "
                               "'name:', or heal: all)");
                }
                ok = false;
            } else {
                it->heal_items[it->n_heal++] = found;
            }
            free(cands);
        }
        tc_path_pop(c, m);
    }
    return ok;
}

static bool parse_link_event(struct tc *c, struct tc_item *it, const struct ty_node *v, bool clear)
{
    if (clear) {
        if (ty_is_null(v) || (v->type == TY_SCALAR && !strcmp(v->str, "all"))) {
            it->clear_all = true;
            return true;
        }
        const struct ty_node *const *list =
            v->type == TY_SEQ ? (const struct ty_node *const *)v->items : &v;
        size_t n = v->type == TY_SEQ ? v->n_items : 1;
        if (v->type == TY_MAP || !n) {
            tc_err_val(c, v, "is not a link selector, a list of them, or all");
            return false;
        }
        it->sels = fl_xcalloc(n, sizeof(*it->sels));
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            size_t m = v->type == TY_SEQ ? tc_path_index(c, i) : c->path.size;
            if (tc_selector(c, list[i], &it->sels[it->n_sels])) {
                it->n_sels++;
            } else {
                ok = false;
            }
            tc_path_pop(c, m);
        }
        return ok;
    }
    if (v->type != TY_MAP || !v->n_pairs) {
        tc_err_val(c, v,
                   "is not a mapping of link selectors to parameters "
                   "(e.g. {\"n1 -> n2\": {delay: 100ms, loss: 10%%}})");
        return false;
    }
    it->sels = fl_xcalloc(v->n_pairs, sizeof(*it->sels));
    it->lsets = fl_xcalloc(v->n_pairs, sizeof(*it->lsets));
    bool ok = true;
    for (size_t i = 0; i < v->n_pairs; i++) {
        size_t m = tc_path_keyn(c, v->pairs[i].key);
        struct tc_selector sel;
        struct tc_link_settings set;
        bool r = tc_selector(c, v->pairs[i].key, &sel);
        r = tc_link_settings(c, v->pairs[i].value, &set) && r;
        if (r) {
            it->sels[it->n_sels] = sel;
            it->lsets[it->n_sels] = set;
            it->n_sels++;
        } else {
            free(sel.text);
            impair_link_params_clear(&set.p);
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if (!ok) {
        return false;
    }
    /* Validate the resulting parameters of every affected link now. */
    for (size_t l = 0; l < c->s->n_links; l++) {
        struct impair_link_params p;
        impair_link_params_copy(&p, &c->s->links[l].params);
        bool hit = false;
        for (int rank = 0; rank <= 9; rank++) {
            for (size_t i = 0; i < it->n_sels; i++) {
                if (it->sels[i].rank == rank &&
                    tc_selector_matches(c, &it->sels[i], &c->s->links[l])) {
                    tc_link_apply(&p, &it->lsets[i]);
                    hit = true;
                }
            }
        }
        struct fl_error *e = NULL;
        if (hit && !impair_link_params_validate(&p, &e)) {
            tc_err(c, v, "link %s: %s", c->s->links[l].name, e->msg);
            fl_error_free(e);
            impair_link_params_clear(&p);
            return false;
        }
        impair_link_params_clear(&p);
    }
    return true;
}

static const char *const node_event_keys[] = {"node", "nodes", "policy", NULL};

static bool parse_node_event(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    const struct ty_node *nodes = v;
    if (v->type == TY_MAP) {
        if (!tc_check_map(c, v, node_event_keys, "a node event")) {
            return false;
        }
        const struct ty_node *one = ty_map_get(v, "node"), *many = ty_map_get(v, "nodes");
        if (!!one + !!many != 1) {
            tc_err(c, v, "give exactly one of 'node' or 'nodes'");
            return false;
        }
        nodes = one ? one : many;
        const struct ty_node *pol = ty_map_get(v, "policy");
        if (pol) {
            size_t m = tc_path_key(c, "policy");
            if (it->kind != TOPO_EV_CRASH) {
                tc_err(c, pol, "'policy' (what unflushed writes become) applies to crash only");
                tc_path_pop(c, m);
                return false;
            }
            static const char *const names[] = {
#define N(name, str) str,
                TOPO_CRASH_POLICIES(N)
#undef N
            };
            int e;
            bool ok = tc_enum(c, pol, names, FL_ARRAY_LEN(names), &e);
            tc_path_pop(c, m);
            if (!ok) {
                return false;
            }
            it->has_policy = true;
            it->policy = (enum topo_crash_policy)e;
        }
        size_t m = tc_path_key(c, one ? "node" : "nodes");
        it->nodes = tc_node_list(c, nodes, &it->n_nodes);
        tc_path_pop(c, m);
        return it->nodes != NULL;
    }
    it->nodes = tc_node_list(c, nodes, &it->n_nodes);
    return it->nodes != NULL;
}

static const char *const clock_keys[] = {"node", "nodes", "skew", "jump", NULL};

static bool parse_clock(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    if (!tc_check_map(c, v, clock_keys, "a clock event ({node: n1, skew: +5s} or jump)")) {
        return false;
    }
    const struct ty_node *one = ty_map_get(v, "node"), *many = ty_map_get(v, "nodes"),
                         *skew = ty_map_get(v, "skew"), *jump = ty_map_get(v, "jump");
    if (!!one + !!many != 1) {
        tc_err(c, v, "give exactly one of 'node' or 'nodes'");
        return false;
    }
    if (!!skew + !!jump != 1) {
        tc_err(c, v,
               "give exactly one of 'skew' (the guest clock's offset from true time, "
               "e.g. -5s) or 'jump' (a step from where the clock is, e.g. +30s)");
        return false;
    }
    size_t m = tc_path_key(c, one ? "node" : "nodes");
    it->nodes = tc_node_list(c, one ? one : many, &it->n_nodes);
    tc_path_pop(c, m);
    m = tc_path_key(c, skew ? "skew" : "jump");
    bool ok = tc_signed_duration(c, skew ? skew : jump, &it->clock_value);
    tc_path_pop(c, m);
    it->clock_jump = jump != NULL;
    return ok && it->nodes;
}

static bool disk_target(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    const struct ty_node *nn = ty_map_get(v, "node"), *dn = ty_map_get(v, "disk");
    if (!nn) {
        tc_err(c, v, "a disk event needs 'node' (and 'disk' when the node has several)");
        return false;
    }
    size_t m = tc_path_key(c, "node");
    it->disk_node = tc_node_ref(c, nn);
    tc_path_pop(c, m);
    if (it->disk_node < 0) {
        return false;
    }
    const struct topo_node *node = &c->s->nodes[it->disk_node];
    if (!node->n_disks) {
        tc_err_val(c, nn, "has no disks (add one under nodes.%s.disks)", node->name);
        return false;
    }
    if (!dn) {
        if (node->n_disks > 1) {
            struct fl_buf b = {0};
            for (size_t i = 0; i < node->n_disks; i++) {
                fl_buf_printf(&b, "%s%s", i ? ", " : "", node->disks[i].name);
            }
            tc_err(c, v, "node '%s' has %zu disks; say which with 'disk' (valid: %s)", node->name,
                   node->n_disks, b.data);
            fl_buf_free(&b);
            return false;
        }
        it->disk_idx = 0;
        return true;
    }
    m = tc_path_key(c, "disk");
    const char **names = fl_xcalloc(node->n_disks + 1, sizeof(*names));
    for (size_t i = 0; i < node->n_disks; i++) {
        names[i] = node->disks[i].name;
    }
    int e = -1;
    if (dn->type == TY_SCALAR) {
        for (size_t i = 0; i < node->n_disks; i++) {
            if (!strcmp(names[i], dn->str)) {
                e = (int)i;
            }
        }
    }
    if (e < 0) {
        struct fl_buf b = {0};
        tc_list_names(&b, names, node->n_disks);
        const char *sugg = dn->type == TY_SCALAR ? tc_suggest(dn->str, names, node->n_disks) : NULL;
        if (sugg) {
            tc_err_val(c, dn, "is not a disk of node '%s'; did you mean '%s'? (valid: %s)",
                       node->name, sugg, b.data);
        } else {
            tc_err_val(c, dn, "is not a disk of node '%s' (valid: %s)", node->name, b.data);
        }
        fl_buf_free(&b);
    }
    free(names);
    tc_path_pop(c, m);
    it->disk_idx = e;
    return e >= 0;
}

static const char *const disk_event_extra[] = {"node", "disk", "capacity", "stall", NULL};
static const char *const disk_clear_keys[] = {"node", "disk", NULL};

static bool parse_disk_event(struct tc *c, struct tc_item *it, const struct ty_node *v, bool clear)
{
    if (clear) {
        if (v->type == TY_SCALAR && !ty_is_null(v)) {
            /* disk-clear: n1 (its only disk) */
            const struct ty_node fake = *v;
            (void)fake;
            it->disk_node = tc_node_ref(c, v);
            if (it->disk_node < 0) {
                return false;
            }
            const struct topo_node *node = &c->s->nodes[it->disk_node];
            if (node->n_disks != 1) {
                tc_err_val(c, v, "has %zu disks; use the long form {node: %s, disk: NAME}",
                           node->n_disks, node->name);
                return false;
            }
            it->disk_idx = 0;
            return true;
        }
        if (!tc_check_map(c, v, disk_clear_keys, "a disk-clear event ({node: n1, disk: data})")) {
            return false;
        }
        return disk_target(c, it, v);
    }
    if (v->type != TY_MAP) {
        tc_err_val(c, v,
                   "is not a disk event (e.g. {node: n1, disk: data, write: {error: 100%%, "
                   "errno: EIO}})");
        return false;
    }
    bool ok = tc_disk_settings(c, v, disk_event_extra, &it->dset);
    ok = disk_target(c, it, v) && ok;
    const struct ty_node *x;
    if ((x = ty_map_get(v, "capacity"))) {
        size_t m = tc_path_key(c, "capacity");
        if (x->type == TY_SCALAR && !strcmp(x->str, "unlimited")) {
            it->capacity = 0;
            it->has_capacity = true;
        } else if (tc_size(c, x, &it->capacity)) {
            it->has_capacity = true;
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if ((x = ty_map_get(v, "stall"))) {
        size_t m = tc_path_key(c, "stall");
        ok = tc_bool(c, x, &it->stall) && ok;
        it->has_stall = true;
        tc_path_pop(c, m);
    }
    if (ok) {
        struct impair_disk_params p;
        impair_disk_params_copy(&p, &c->s->nodes[it->disk_node].disks[it->disk_idx].faults);
        tc_disk_apply(&p, &it->dset);
        struct fl_error *e = NULL;
        if (!impair_disk_params_validate(&p, &e)) {
            tc_err(c, v, "%s", e->msg);
            fl_error_free(e);
            ok = false;
        }
        impair_disk_params_clear(&p);
    }
    return ok;
}

static const char *const exec_keys[] = {"node", "command", "background", "timeout",
                                        "exit", "output",  NULL};
static const char *const wait_keys[] = {"node", "command", "timeout", "interval", NULL};

static bool parse_exec(struct tc *c, struct tc_item *it, const struct ty_node *v, bool wait)
{
    if (!tc_check_map(c, v, wait ? wait_keys : exec_keys,
                      wait ? "a wait ({node: n1, command: '...', timeout: 60s})"
                           : "an exec ({node: n1, command: '...'})")) {
        return false;
    }
    const struct ty_node *nn = ty_map_get(v, "node"), *cn = ty_map_get(v, "command");
    if (!nn || !cn) {
        tc_err(c, v, "%s needs 'node' and 'command'", wait ? "a wait" : "an exec");
        return false;
    }
    size_t m = tc_path_key(c, "node");
    int node = tc_node_ref(c, nn);
    tc_path_pop(c, m);
    m = tc_path_key(c, "command");
    const char *cmd;
    bool ok = tc_string(c, cn, &cmd) && node >= 0;
    tc_path_pop(c, m);
    if (ok) {
        it->nodes = fl_xmalloc(sizeof(uint32_t));
        it->nodes[0] = (uint32_t)node;
        it->n_nodes = 1;
        it->command = fl_xstrdup(cmd);
    }
    const struct ty_node *x;
    if ((x = ty_map_get(v, "background"))) {
        m = tc_path_key(c, "background");
        ok = tc_bool(c, x, &it->background) && ok;
        tc_path_pop(c, m);
    }
    it->timeout = wait ? DEFAULT_WAIT_TIMEOUT : it->background ? 0 : DEFAULT_EXEC_TIMEOUT;
    it->interval = DEFAULT_INTERVAL;
    if ((x = ty_map_get(v, "timeout"))) {
        m = tc_path_key(c, "timeout");
        if (tc_duration(c, x, &it->timeout)) {
            if (it->timeout <= 0 && (wait || !it->background)) {
                tc_err_val(c, x, "is not a timeout (valid: more than 0s)");
                ok = false;
            }
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if ((x = ty_map_get(v, "interval"))) {
        m = tc_path_key(c, "interval");
        if (tc_duration(c, x, &it->interval)) {
            if (it->interval < 10 * FL_NS_PER_MS) {
                tc_err_val(c, x, "is too short a polling interval (valid: 10ms or more)");
                ok = false;
            }
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if (!wait && (ty_map_get(v, "exit") || ty_map_get(v, "output"))) {
        it->has_expect = true;
        ok = tc_parse_expect(c, v, &it->expect) && ok;
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* Items                                                               */
/* ------------------------------------------------------------------ */

static bool parse_after(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    const char *s;
    if (!tc_string(c, v, &s)) {
        return false;
    }
    const char *plus = strchr(s, '+');
    size_t len = plus ? (size_t)(plus - s) : strlen(s);
    while (len && s[len - 1] == ' ') {
        len--;
    }
    it->after_name = fl_xstrndup(s, len);
    if (plus) {
        const char *d = plus + 1;
        while (*d == ' ') {
            d++;
        }
        struct fl_error *e = NULL;
        if (!impair_parse_duration(d, &it->after_off, &e)) {
            fl_error_free(e);
            tc_err_val(c, v, "is not 'NAME' or 'NAME + DURATION' (e.g. after: cut + 5s)");
            return false;
        }
    }
    if (!len) {
        tc_err_val(c, v, "is not 'NAME' or 'NAME + DURATION' (e.g. after: cut + 5s)");
        return false;
    }
    return true;
}

/* Timing keys shared by timeline items and checks. */
static bool parse_timing(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    bool ok = true;
    it->at_node = ty_map_get(v, "at");
    it->after_node = ty_map_get(v, "after");
    it->window = -1;
    if (it->at_node && it->after_node) {
        char *see = tc_see(c, tc_loc(it->at_node));
        size_t m = tc_path_key(c, "after");
        tc_err(c, it->after_node, "give either 'at' or 'after', not both (at is at %s)", see);
        tc_path_pop(c, m);
        free(see);
        ok = false;
    }
    if (it->at_node) {
        size_t m = tc_path_key(c, "at");
        if (it->is_check && it->at_node->type == TY_SCALAR && !strcmp(it->at_node->str, "end")) {
            it->at_end = true;
        } else {
            ok = tc_duration(c, it->at_node, &it->at) && ok;
        }
        tc_path_pop(c, m);
    } else if (it->after_node) {
        size_t m = tc_path_key(c, "after");
        ok = parse_after(c, it, it->after_node) && ok;
        tc_path_pop(c, m);
    } else if (it->is_check) {
        it->at_end = true;
    } else {
        tc_err(c, v,
               "an event needs a time: 'at' (e.g. at: 10s) or 'after' (e.g. after: cut + "
               "5s)");
        ok = false;
    }
    if (it->is_check) {
        return ok;
    }
    it->every_node = ty_map_get(v, "every");
    it->for_node = ty_map_get(v, "for");
    it->times_node = ty_map_get(v, "times");
    it->duration_node = ty_map_get(v, "duration");
    if (it->every_node) {
        size_t m = tc_path_key(c, "every");
        if (tc_duration(c, it->every_node, &it->every)) {
            if (it->every < 10 * FL_NS_PER_MS) {
                tc_err_val(c, it->every_node, "is too short a period (valid: 10ms or more)");
                ok = false;
            }
            it->has_every = true;
        } else {
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if (it->for_node || it->times_node) {
        const struct ty_node *x = it->for_node ? it->for_node : it->times_node;
        size_t m = tc_path_key(c, it->for_node ? "for" : "times");
        if (!it->every_node) {
            tc_err(c, x, "'%s' limits a repetition: it needs 'every'",
                   it->for_node ? "for" : "times");
            ok = false;
        } else if (it->for_node && it->times_node) {
            tc_err(c, x, "give either 'for' or 'times', not both");
            ok = false;
        } else if (it->for_node) {
            ok = tc_duration(c, x, &it->window) && ok;
        } else {
            ok = tc_uint(c, x, 1, 100000, &it->times) && ok;
        }
        tc_path_pop(c, m);
    }
    if (it->duration_node) {
        size_t m = tc_path_key(c, "duration");
        switch (it->kind) {
        case TOPO_EV_PARTITION:
        case TOPO_EV_LINK_SET:
        case TOPO_EV_CRASH:
        case TOPO_EV_SHUTDOWN:
        case TOPO_EV_PAUSE:
        case TOPO_EV_CLOCK:
        case TOPO_EV_DISK_SET:
            if (tc_duration(c, it->duration_node, &it->duration)) {
                if (it->duration <= 0) {
                    tc_err_val(c, it->duration_node,
                               "is not a duration for a fault (valid: more "
                               "than 0s)");
                    ok = false;
                } else {
                    it->has_duration = true;
                }
            } else {
                ok = false;
            }
            break;
        default:
            tc_err(c, it->duration_node,
                   "'duration' (undo the event after a while) does not apply to %s (valid for: "
                   "partition, isolate, link, crash, shutdown, pause, clock, disk)",
                   topo_event_kind_name(it->kind));
            ok = false;
        }
        tc_path_pop(c, m);
    }
    if (it->has_every && it->has_duration && it->duration >= it->every) {
        size_t m = tc_path_key(c, "duration");
        tc_err(c, it->duration_node,
               "lasts as long as or longer than the period (every) it repeats with, so "
               "occurrences would overlap");
        tc_path_pop(c, m);
        ok = false;
    }
    return ok;
}

static void parse_item(struct tc *c, struct tc_item *it, const struct ty_node *v)
{
    static const char *allowed[FL_ARRAY_LEN(kind_keys) + FL_ARRAY_LEN(timing_keys)];
    size_t na = 0;
    for (size_t i = 0; i < FL_ARRAY_LEN(timing_keys); i++) {
        allowed[na++] = timing_keys[i];
    }
    for (size_t i = 0; kind_keys[i]; i++) {
        allowed[na++] = kind_keys[i];
    }
    allowed[na] = NULL;
    it->node = v;
    it->isolate_node = -1;
    it->disk_node = it->disk_idx = -1;
    bool two_kinds = false;
    if (!tc_check_map(c, v, allowed, "a timeline event")) {
        return;
    }
    for (size_t i = 0; i < v->n_pairs; i++) {
        const struct ty_node *k = v->pairs[i].key;
        if (k->type != TY_SCALAR) {
            continue;
        }
        for (size_t j = 0; kind_keys[j]; j++) {
            if (strcmp(k->str, kind_keys[j])) {
                continue;
            }
            if (it->kind_key) {
                char *see = tc_see(c, tc_loc(it->kind_key));
                tc_err(c, k, "has two event kinds ('%s' at %s and '%s'); one event per list item",
                       it->kind_key->str, see, k->str);
                free(see);
                two_kinds = true;
            } else {
                it->kind_key = k;
                it->kind_val = v->pairs[i].value;
                it->kind = kind_of_key[j];
            }
        }
    }
    if (!it->kind_key) {
        tc_err(c, v,
               "an event needs one kind: partition, isolate, heal, link, link-clear, "
               "crash, restart, shutdown, pause, resume, reboot, clock, disk, disk-clear, "
               "exec, mark or wait");
        return;
    }
    const struct ty_node *name = ty_map_get(v, "name");
    if (name) {
        size_t m = tc_path_key(c, "name");
        if (tc_name(c, name, 64, "event name")) {
            for (size_t j = 0; j < c->n_items; j++) {
                if (&c->items[j] != it && c->items[j].name &&
                    !strcmp(c->items[j].name, name->str)) {
                    char *see = tc_see(c, tc_loc(c->items[j].name_node));
                    tc_err_val(c, name, "is the name of another event too (at %s)", see);
                    free(see);
                }
            }
            it->name = fl_xstrdup(name->str);
            it->name_node = name;
        }
        tc_path_pop(c, m);
    }
    bool ok = parse_timing(c, it, v);
    const struct ty_node *kv = it->kind_val;
    size_t m = tc_path_keyn(c, it->kind_key);
    bool r = false;
    switch (it->kind) {
    case TOPO_EV_PARTITION:
        if (!strcmp(it->kind_key->str, "isolate")) {
            int node = tc_node_ref(c, kv);
            if (node >= 0) {
                it->shape = TOPO_SHAPE_ISOLATE;
                it->isolate_node = node;
                r = candidates(c, it, NULL) && shape_fits(c, it, kv);
            }
        } else {
            r = parse_partition(c, it, kv);
        }
        break;
    case TOPO_EV_HEAL:
        r = true; /* names resolved after every item is known */
        break;
    case TOPO_EV_LINK_SET:
        r = parse_link_event(c, it, kv, false);
        break;
    case TOPO_EV_LINK_CLEAR:
        r = parse_link_event(c, it, kv, true);
        break;
    case TOPO_EV_CRASH:
    case TOPO_EV_RESTART:
    case TOPO_EV_SHUTDOWN:
    case TOPO_EV_PAUSE:
    case TOPO_EV_RESUME:
    case TOPO_EV_REBOOT:
        r = parse_node_event(c, it, kv);
        break;
    case TOPO_EV_CLOCK:
        r = parse_clock(c, it, kv);
        break;
    case TOPO_EV_DISK_SET:
        r = parse_disk_event(c, it, kv, false);
        break;
    case TOPO_EV_DISK_CLEAR:
        r = parse_disk_event(c, it, kv, true);
        break;
    case TOPO_EV_EXEC:
        r = parse_exec(c, it, kv, false);
        break;
    case TOPO_EV_WAIT:
        r = parse_exec(c, it, kv, true);
        break;
    case TOPO_EV_MARK: {
        const char *s;
        r = tc_string(c, kv, &s);
        if (r) {
            it->mark = fl_xstrdup(s);
        }
        break;
    }
    default:
        break;
    }
    tc_path_pop(c, m);
    it->ok = ok && r && !two_kinds;
}

void tc_parse_timeline(struct tc *c, const struct ty_node *n)
{
    if (!n || ty_is_null(n)) {
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, n, "timeline", TY_SEQ,
                          "a list of events (e.g. - {at: 10s, isolate: n3})", &m0)) {
        return;
    }
    c->items = fl_xcalloc(n->n_items ? n->n_items : 1, sizeof(*c->items));
    c->n_items = n->n_items;
    for (size_t i = 0; i < n->n_items; i++) {
        c->items[i].index = i;
    }
    /* Pass 1: names and kinds, so heals and afters can refer forward. */
    for (size_t i = 0; i < n->n_items; i++) {
        const struct ty_node *v = n->items[i];
        if (v->type != TY_MAP) {
            continue;
        }
        for (size_t j = 0; j < v->n_pairs; j++) {
            const struct ty_node *k = v->pairs[j].key;
            for (size_t q = 0; k->type == TY_SCALAR && kind_keys[q]; q++) {
                if (!strcmp(k->str, kind_keys[q]) && !c->items[i].kind_key) {
                    c->items[i].kind = kind_of_key[q];
                }
            }
        }
    }
    for (size_t i = 0; i < n->n_items; i++) {
        size_t m = tc_path_index(c, i);
        parse_item(c, &c->items[i], n->items[i]);
        tc_path_pop(c, m);
    }
    for (size_t i = 0; i < n->n_items; i++) {
        struct tc_item *it = &c->items[i];
        if (it->kind_key && it->kind == TOPO_EV_HEAL) {
            size_t m = tc_path_index(c, i);
            size_t mk = tc_path_key(c, "heal");
            it->ok = parse_heal(c, it, it->kind_val) && it->ok;
            tc_path_pop(c, mk);
            tc_path_pop(c, m);
        }
    }
    tc_path_pop(c, m0);
}

/* ------------------------------------------------------------------ */
/* checks:                                                             */
/* ------------------------------------------------------------------ */

static const char *const check_keys[] = {"name",  "node",    "command", "at",
                                         "after", "timeout", "within",  "interval",
                                         "exit",  "output",  NULL};

void tc_parse_checks(struct tc *c, const struct ty_node *n)
{
    if (!n || ty_is_null(n)) {
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, n, "checks", TY_SEQ,
                          "a list of checks (e.g. - {node: n1, command: 'ping -c1 n2'})", &m0)) {
        return;
    }
    c->citems = fl_xcalloc(n->n_items ? n->n_items : 1, sizeof(*c->citems));
    c->n_citems = n->n_items;
    for (size_t i = 0; i < n->n_items; i++) {
        struct tc_item *it = &c->citems[i];
        const struct ty_node *v = n->items[i];
        it->index = i;
        it->is_check = true;
        it->kind = TOPO_EV_CHECK;
        it->node = v;
        size_t m = tc_path_index(c, i);
        if (!tc_check_map(c, v, check_keys, "a check")) {
            tc_path_pop(c, m);
            continue;
        }
        bool ok = parse_timing(c, it, v);
        const struct ty_node *x;
        if ((x = ty_map_get(v, "name"))) {
            size_t mk = tc_path_key(c, "name");
            const char *s;
            if (tc_string(c, x, &s)) {
                for (size_t j = 0; j < i; j++) {
                    if (c->citems[j].name && !strcmp(c->citems[j].name, s)) {
                        char *see = tc_see(c, tc_loc(c->citems[j].name_node));
                        tc_err_val(c, x, "is the name of another check too (at %s)", see);
                        free(see);
                        ok = false;
                    }
                }
                it->name = fl_xstrdup(s);
                it->name_node = x;
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        const struct ty_node *nn = ty_map_get(v, "node"), *cn = ty_map_get(v, "command");
        if (!nn || !cn) {
            tc_err(c, v, "a check needs 'node' and 'command'");
            ok = false;
        } else {
            size_t mk = tc_path_key(c, "node");
            int node = tc_node_ref(c, nn);
            tc_path_pop(c, mk);
            mk = tc_path_key(c, "command");
            const char *cmd;
            if (tc_string(c, cn, &cmd) && node >= 0) {
                it->nodes = fl_xmalloc(sizeof(uint32_t));
                it->nodes[0] = (uint32_t)node;
                it->n_nodes = 1;
                it->command = fl_xstrdup(cmd);
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        it->timeout = DEFAULT_CHECK_TIMEOUT;
        it->interval = DEFAULT_INTERVAL;
        if ((x = ty_map_get(v, "timeout"))) {
            size_t mk = tc_path_key(c, "timeout");
            if (!tc_duration(c, x, &it->timeout) || it->timeout <= 0) {
                if (it->timeout <= 0) {
                    tc_err_val(c, x, "is not a timeout (valid: more than 0s)");
                }
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        if ((x = ty_map_get(v, "within"))) {
            size_t mk = tc_path_key(c, "within");
            ok = tc_duration(c, x, &it->within) && ok;
            tc_path_pop(c, mk);
        }
        if ((x = ty_map_get(v, "interval"))) {
            size_t mk = tc_path_key(c, "interval");
            if (tc_duration(c, x, &it->interval)) {
                if (it->interval < 10 * FL_NS_PER_MS) {
                    tc_err_val(c, x, "is too short a retry interval (valid: 10ms or more)");
                    ok = false;
                }
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        ok = tc_parse_expect(c, v, &it->expect) && ok;
        it->ok = ok;
        tc_path_pop(c, m);
    }
    tc_path_pop(c, m0);
}

/* ------------------------------------------------------------------ */
/* Time resolution                                                     */
/* ------------------------------------------------------------------ */

static bool resolve(struct tc *c, struct tc_item *it, const char *where)
{
    if (it->state == 2) {
        return true;
    }
    if (it->state == 3) {
        return false;
    }
    if (it->state == 1) {
        return false; /* reported by the caller as a cycle */
    }
    if (!it->after_name) {
        it->state = it->at_node || it->at_end ? 2 : 3;
        it->rank = 0;
        return it->state == 2;
    }
    it->state = 1;
    struct tc_item *target = NULL;
    const char **names = fl_xcalloc(c->n_items + 1, sizeof(*names));
    size_t nn = 0;
    for (size_t i = 0; i < c->n_items; i++) {
        if (c->items[i].name) {
            names[nn++] = c->items[i].name;
            if (!strcmp(c->items[i].name, it->after_name)) {
                target = &c->items[i];
            }
        }
    }
    size_t m = tc_path_key(c, where);
    tc_path_index(c, it->index);
    tc_path_key(c, "after");
    bool ok = false;
    if (!target) {
        const char *sugg = tc_suggest(it->after_name, names, nn);
        if (sugg) {
            tc_err(c, it->after_node,
                   "'%s' is not the name of a timeline event; did you mean "
                   "'%s'?",
                   it->after_name, sugg);
        } else {
            tc_err(c, it->after_node,
                   "'%s' is not the name of a timeline event (give that event a 'name:')",
                   it->after_name);
        }
    } else if (target == it) {
        tc_err(c, it->after_node, "an event cannot come after itself");
    } else if (target->has_every) {
        tc_err(c, it->after_node,
               "'%s' repeats (every), so 'after' would be ambiguous; refer to a single event",
               it->after_name);
    } else if (target->state == 1) {
        tc_err(c, it->after_node, "'after' chain loops back to '%s'", it->after_name);
    } else if (resolve(c, target, "timeline")) {
        it->at = target->at + it->after_off;
        it->rank = target->rank + 1;
        ok = true;
    }
    tc_path_pop(c, m);
    free(names);
    it->state = ok ? 2 : 3;
    return ok;
}

/* ------------------------------------------------------------------ */
/* Expansion                                                           */
/* ------------------------------------------------------------------ */

struct topo_event *tc_add_event(struct tc *c, enum topo_event_kind kind, enum topo_origin origin,
                                int64_t at, const struct tc_evkey *key)
{
    if (c->n_events >= TC_MAX_EVENTS || c->work > TC_MAX_WORK) {
        c->too_many_events = true;
        return NULL;
    }
    c->events = fl_xgrow(c->events, &c->alloc_events, c->n_events + 1, sizeof(*c->events));
    c->keys = fl_xgrow(c->keys, &c->alloc_keys, c->n_events + 1, sizeof(*c->keys));
    c->evx = fl_xgrow(c->evx, &c->alloc_evx, c->n_events + 1, sizeof(*c->evx));
    struct topo_event *e = &c->events[c->n_events];
    memset(e, 0, sizeof(*e));
    memset(&c->evx[c->n_events], 0, sizeof(c->evx[0]));
    e->kind = kind;
    e->origin = origin;
    e->at_ns = at;
    c->keys[c->n_events] = *key;
    c->keys[c->n_events].at = at;
    c->evx[c->n_events].item = SIZE_MAX;
    c->n_events++;
    return e;
}

static struct tc_evx *last_evx(struct tc *c)
{
    return &c->evx[c->n_events - 1];
}

static char *source_of(const struct tc_item *it, uint64_t occ, bool many)
{
    if (many) {
        return fl_xasprintf("timeline[%zu] #%llu", it->index, (unsigned long long)occ + 1);
    }
    return fl_xasprintf("timeline[%zu]", it->index);
}

static void link_changes(struct tc *c, const struct tc_item *it, struct topo_ev_link *out,
                         bool clear)
{
    struct fl_buf label = {0};
    for (size_t i = 0; i < it->n_sels; i++) {
        fl_buf_printf(&label, "%s%s", i ? ", " : "", it->sels[i].text);
    }
    if (clear && it->clear_all) {
        fl_buf_puts(&label, "all");
    }
    out->label = fl_buf_steal(&label);
    out->changes = fl_xcalloc(c->s->n_links ? c->s->n_links : 1, sizeof(*out->changes));
    for (size_t l = 0; l < c->s->n_links; l++) {
        bool hit = clear && it->clear_all;
        for (size_t i = 0; i < it->n_sels && !hit; i++) {
            hit = tc_selector_matches(c, &it->sels[i], &c->s->links[l]);
        }
        if (!hit) {
            continue;
        }
        c->work += TC_WORK_LINK_CHANGE;
        struct topo_link_change *ch = &out->changes[out->n_changes++];
        ch->link = (uint32_t)l;
        impair_link_params_copy(&ch->params, &c->s->links[l].params);
        if (!clear) {
            for (int rank = 0; rank <= 9; rank++) {
                for (size_t i = 0; i < it->n_sels; i++) {
                    if (it->sels[i].rank == rank &&
                        tc_selector_matches(c, &it->sels[i], &c->s->links[l])) {
                        tc_link_apply(&ch->params, &it->lsets[i]);
                    }
                }
            }
        }
    }
}

static void disk_event(struct tc *c, const struct tc_item *it, struct topo_ev_disk *d, bool clear)
{
    const struct topo_disk *disk = &c->s->nodes[it->disk_node].disks[it->disk_idx];
    d->node = (uint32_t)it->disk_node;
    d->disk = (uint32_t)it->disk_idx;
    impair_disk_params_copy(&d->faults, &disk->faults);
    d->capacity_bytes = disk->capacity_bytes;
    if (!clear) {
        tc_disk_apply(&d->faults, &it->dset);
        if (it->has_capacity) {
            d->capacity_bytes = it->capacity;
        }
        d->stall = it->has_stall && it->stall;
    }
}

/* Emits the events of one occurrence of an item at time t. */
static void emit(struct tc *c, struct tc_item *it, int64_t t, uint64_t occ, bool many,
                 struct impair_rng *rng)
{
    struct tc_evkey key = {.group = 0, .rank = it->rank, .decl = (uint32_t)it->index, .sub = 0};
    struct topo_loc loc = tc_loc(it->node);
    bool rev = it->has_duration;
    int64_t tr = t + it->duration;
    struct tc_evkey rkey = key;
    rkey.sub = 1;
#define NEW(kind_, origin_, at_, key_)                                                             \
    struct topo_event *e = tc_add_event(c, (kind_), (origin_), (at_), (key_));                     \
    if (!e) {                                                                                      \
        return;                                                                                    \
    }                                                                                              \
    e->loc = loc;                                                                                  \
    e->name = it->name ? fl_xstrdup(it->name) : NULL;                                              \
    e->source = source_of(it, occ, many);                                                          \
    last_evx(c)->item = it->index;                                                                 \
    last_evx(c)->is_static = true
    switch (it->kind) {
    case TOPO_EV_PARTITION: {
        uint32_t pid = c->next_pid++;
        {
            NEW(TOPO_EV_PARTITION, TOPO_ORIGIN_TIMELINE, t, &key);
            struct topo_ev_partition *p = &e->u.partition;
            p->shape = it->shape;
            struct tc_cuts cuts = {0};
            if (it->shape == TOPO_SHAPE_GROUPS || it->shape == TOPO_SHAPE_ONE_WAY) {
                cuts.v = fl_xcalloc(it->fixed_cuts.n ? it->fixed_cuts.n : 1, sizeof(*cuts.v));
                memcpy(cuts.v, it->fixed_cuts.v, it->fixed_cuts.n * sizeof(*cuts.v));
                cuts.n = it->fixed_cuts.n;
                p->label = fl_xstrdup(it->fixed_label);
            } else {
                tc_shape_cuts(c->s, it->shape, it->nodes, it->n_nodes, it->isolate_node, rng, &cuts,
                              &p->label);
            }
            p->cuts = cuts.v;
            p->n_cuts = cuts.n;
            c->work += cuts.n;
            last_evx(c)->pid = pid;
        }
        if (rev) {
            NEW(TOPO_EV_HEAL, TOPO_ORIGIN_REVERT, tr, &rkey);
            e->u.partition.label =
                fl_xasprintf("heal %s", c->events[c->n_events - 2].u.partition.label);
            last_evx(c)->pid = pid;
            last_evx(c)->heal_pid = true;
        }
        break;
    }
    case TOPO_EV_HEAL: {
        NEW(TOPO_EV_HEAL, TOPO_ORIGIN_TIMELINE, t, &key);
        if (it->heal_all) {
            e->u.partition.label = fl_xstrdup("heal all");
        } else {
            struct fl_buf b = {0};
            fl_buf_puts(&b, "heal");
            for (size_t i = 0; i < it->n_heal; i++) {
                fl_buf_printf(&b, " %s", c->items[it->heal_items[i]].name);
            }
            e->u.partition.label = fl_buf_steal(&b);
        }
        break;
    }
    case TOPO_EV_LINK_SET:
    case TOPO_EV_LINK_CLEAR: {
        {
            NEW(it->kind, TOPO_ORIGIN_TIMELINE, t, &key);
            link_changes(c, it, &e->u.link, it->kind == TOPO_EV_LINK_CLEAR);
        }
        if (rev) {
            NEW(TOPO_EV_LINK_CLEAR, TOPO_ORIGIN_REVERT, tr, &rkey);
            link_changes(c, it, &e->u.link, true);
        }
        break;
    }
    case TOPO_EV_CRASH:
    case TOPO_EV_RESTART:
    case TOPO_EV_SHUTDOWN:
    case TOPO_EV_PAUSE:
    case TOPO_EV_RESUME:
    case TOPO_EV_REBOOT:
        for (size_t i = 0; i < it->n_nodes; i++) {
            key.sub = (uint32_t)i * 2;
            rkey.sub = (uint32_t)i * 2 + 1;
            {
                NEW(it->kind, TOPO_ORIGIN_TIMELINE, t, &key);
                e->u.node.node = it->nodes[i];
                e->u.node.has_policy = it->has_policy;
                e->u.node.policy = it->policy;
            }
            if (rev) {
                enum topo_event_kind k =
                    it->kind == TOPO_EV_PAUSE ? TOPO_EV_RESUME : TOPO_EV_RESTART;
                NEW(k, TOPO_ORIGIN_REVERT, tr, &rkey);
                e->u.node.node = it->nodes[i];
            }
        }
        break;
    case TOPO_EV_CLOCK:
        for (size_t i = 0; i < it->n_nodes; i++) {
            key.sub = (uint32_t)i * 2;
            rkey.sub = (uint32_t)i * 2 + 1;
            uint32_t cid = c->next_cid++;
            {
                NEW(TOPO_EV_CLOCK, TOPO_ORIGIN_TIMELINE, t, &key);
                e->u.clock.node = it->nodes[i];
                last_evx(c)->cid = cid;
                last_evx(c)->clock_abs = !it->clock_jump;
                last_evx(c)->clock_val = it->clock_value;
            }
            if (rev) {
                NEW(TOPO_EV_CLOCK, TOPO_ORIGIN_REVERT, tr, &rkey);
                e->u.clock.node = it->nodes[i];
                last_evx(c)->cid = cid;
                last_evx(c)->clock_revert = true;
            }
        }
        break;
    case TOPO_EV_DISK_SET:
    case TOPO_EV_DISK_CLEAR: {
        {
            NEW(it->kind, TOPO_ORIGIN_TIMELINE, t, &key);
            disk_event(c, it, &e->u.disk, it->kind == TOPO_EV_DISK_CLEAR);
        }
        if (rev) {
            NEW(TOPO_EV_DISK_CLEAR, TOPO_ORIGIN_REVERT, tr, &rkey);
            disk_event(c, it, &e->u.disk, true);
        }
        break;
    }
    case TOPO_EV_EXEC: {
        NEW(TOPO_EV_EXEC, TOPO_ORIGIN_TIMELINE, t, &key);
        e->u.exec.node = it->nodes[0];
        e->u.exec.command = fl_xstrdup(it->command);
        e->u.exec.background = it->background;
        e->u.exec.timeout_ns = it->timeout;
        e->u.exec.has_expect = it->has_expect;
        e->u.exec.expect.exit = it->expect.exit;
        e->u.exec.expect.code = it->expect.code;
        e->u.exec.expect.output = it->expect.output ? fl_xstrdup(it->expect.output) : NULL;
        last_evx(c)->extent = it->background ? 0 : it->timeout;
        break;
    }
    case TOPO_EV_WAIT: {
        NEW(TOPO_EV_WAIT, TOPO_ORIGIN_TIMELINE, t, &key);
        e->u.wait.node = it->nodes[0];
        e->u.wait.command = fl_xstrdup(it->command);
        e->u.wait.timeout_ns = it->timeout;
        e->u.wait.interval_ns = it->interval;
        last_evx(c)->extent = it->timeout;
        break;
    }
    case TOPO_EV_MARK: {
        NEW(TOPO_EV_MARK, TOPO_ORIGIN_TIMELINE, t, &key);
        e->u.mark = fl_xstrdup(it->mark);
        break;
    }
    default:
        break;
    }
#undef NEW
}

static void expand_items(struct tc *c)
{
    struct topo_scenario *s = c->s;
    for (size_t i = 0; i < c->n_items; i++) {
        struct tc_item *it = &c->items[i];
        if (!it->ok || !resolve(c, it, "timeline")) {
            continue;
        }
        size_t m = tc_path_key(c, "timeline");
        tc_path_index(c, i);
        const struct ty_node *tn = it->at_node ? it->at_node : it->after_node;
        tc_path_key(c, it->at_node ? "at" : "after");
        char *ts = tc_format_duration(it->at), *ds = tc_format_duration(s->duration_ns);
        if (it->at >= s->duration_ns) {
            tc_err(c, tn, "the event is at %s, at or after the end of the run (run.duration: %s)",
                   ts, ds);
            free(ts);
            free(ds);
            tc_path_pop(c, m);
            continue;
        }
        free(ts);
        tc_path_pop(c, m);
        struct impair_rng rng;
        char *stream = fl_xasprintf("timeline:%zu", it->index);
        impair_rng_seed(&rng, s->seed, impair_stream_id(stream));
        free(stream);
        uint64_t occ = 0;
        for (int64_t t = it->at;; t += it->every, occ++) {
            bool last_allowed = true;
            if (it->has_every) {
                if (it->times && occ >= it->times) {
                    break;
                }
                if (it->window >= 0 && t >= it->at + it->window) {
                    break;
                }
                if (!it->times && it->window < 0 && t >= s->duration_ns) {
                    break;
                }
            }
            if (t >= s->duration_ns) {
                char *ts2 = tc_format_duration(t);
                m = tc_path_key(c, "timeline");
                tc_path_index(c, i);
                tc_path_key(c, it->times_node ? "times" : "for");
                tc_err(c, it->times_node ? it->times_node : it->for_node,
                       "repetition %llu would be at %s, at or after the end of the run "
                       "(run.duration: %s)",
                       (unsigned long long)occ + 1, ts2, ds);
                tc_path_pop(c, m);
                free(ts2);
                last_allowed = false;
            }
            if (last_allowed && it->has_duration && t + it->duration > s->duration_ns) {
                char *te = tc_format_duration(t + it->duration);
                m = tc_path_key(c, "timeline");
                tc_path_index(c, i);
                tc_path_key(c, "duration");
                tc_err(c, it->duration_node,
                       "the event would end at %s, after the end of the run (run.duration: %s)", te,
                       ds);
                tc_path_pop(c, m);
                free(te);
                last_allowed = false;
            }
            if (!last_allowed || c->too_many_events) {
                break;
            }
            emit(c, it, t, occ, it->has_every, &rng);
            if (!it->has_every) {
                break;
            }
        }
        free(ds);
    }
    /* Checks. */
    s->checks = fl_xcalloc(c->n_citems ? c->n_citems : 1, sizeof(*s->checks));
    for (size_t i = 0; i < c->n_citems; i++) {
        struct tc_item *it = &c->citems[i];
        if (!it->ok || !resolve(c, it, "checks")) {
            continue;
        }
        if (!it->at_end && it->at >= s->duration_ns) {
            char *ts = tc_format_duration(it->at), *ds = tc_format_duration(s->duration_ns);
            size_t m = tc_path_key(c, "checks");
            tc_path_index(c, i);
            tc_path_key(c, it->at_node ? "at" : "after");
            tc_err(c, it->at_node ? it->at_node : it->after_node,
                   "the check is at %s, at or after the end of the run (run.duration: %s); use "
                   "'at: end' for a check after the timeline",
                   ts, ds);
            tc_path_pop(c, m);
            free(ts);
            free(ds);
            continue;
        }
        struct topo_check *ck = &s->checks[s->n_checks];
        ck->name = it->name ? fl_xstrdup(it->name) : fl_xasprintf("check-%zu", i + 1);
        ck->node = it->nodes[0];
        ck->command = fl_xstrdup(it->command);
        ck->at_ns = it->at_end ? TOPO_AT_END : it->at;
        ck->timeout_ns = it->timeout;
        ck->within_ns = it->within;
        ck->interval_ns = it->interval;
        ck->expect = it->expect;
        it->expect.output = NULL; /* moved */
        ck->loc = tc_loc(it->node);
        if (!it->at_end) {
            struct tc_evkey key = {
                .group = 0, .rank = it->rank, .decl = (uint32_t)(c->n_items + i)};
            struct topo_event *e = tc_add_event(c, TOPO_EV_CHECK, TOPO_ORIGIN_CHECK, it->at, &key);
            if (e) {
                e->u.check = (uint32_t)s->n_checks;
                e->loc = ck->loc;
                e->name = fl_xstrdup(ck->name);
                e->source = fl_xasprintf("checks[%zu]", i);
                last_evx(c)->item = SIZE_MAX;
                last_evx(c)->is_static = true;
                last_evx(c)->extent = it->within + it->timeout;
            }
        }
        s->n_checks++;
    }
    /* Unnamed checks in declaration order keep their numbers even when an
     * earlier one failed: names come from the item index above. */
}

/* ------------------------------------------------------------------ */
/* Sorting                                                             */
/* ------------------------------------------------------------------ */

static int cmp_key(const struct tc_evkey *a, const struct tc_evkey *b)
{
    if (a->at != b->at) {
        return a->at < b->at ? -1 : 1;
    }
    if (a->group != b->group) {
        return a->group < b->group ? -1 : 1;
    }
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    if (a->decl != b->decl) {
        return a->decl < b->decl ? -1 : 1;
    }
    if (a->sub != b->sub) {
        return a->sub < b->sub ? -1 : 1;
    }
    return 0;
}

static int cmp_index(const void *x, const void *y, void *arg)
{
    const struct tc *c = arg;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int r = cmp_key(&c->keys[a], &c->keys[b]);
    if (r) {
        return r;
    }
    return a < b ? -1 : (a > b);
}

void tc_sort_events(struct tc *c)
{
    size_t n = c->n_events;
    if (n < 2) {
        return;
    }
    size_t *idx = fl_xcalloc(n, sizeof(*idx));
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    qsort_r(idx, n, sizeof(*idx), cmp_index, c);
    struct topo_event *ev = fl_xcalloc(n, sizeof(*ev));
    struct tc_evkey *keys = fl_xcalloc(n, sizeof(*keys));
    struct tc_evx *evx = fl_xcalloc(n, sizeof(*evx));
    for (size_t i = 0; i < n; i++) {
        ev[i] = c->events[idx[i]];
        keys[i] = c->keys[idx[i]];
        evx[i] = c->evx[idx[i]];
    }
    free(c->events);
    free(c->keys);
    free(c->evx);
    c->events = ev;
    c->keys = keys;
    c->evx = evx;
    c->alloc_events = c->alloc_keys = c->alloc_evx = n;
    free(idx);
}

/* ------------------------------------------------------------------ */
/* Static simulation: node states, active partitions/links/disk faults  */
/* ------------------------------------------------------------------ */

enum nstate { NS_RUNNING, NS_PAUSED, NS_CRASHED, NS_STOPPED };
static const char *const nstate_names[] = {"running", "paused", "crashed", "shut down"};

struct nsim {
    enum nstate st;
    const struct topo_event *since; /* event that put it in this state */
    int64_t down_at;                /* when it left RUNNING */
};

static void busy_add(struct tc *c, uint32_t node, int64_t a, int64_t b)
{
    struct tc_busy *bz = &c->busy[node];
    bz->iv = fl_xgrow(bz->iv, &bz->alloc, bz->n + 1, sizeof(*bz->iv));
    bz->iv[bz->n][0] = a;
    bz->iv[bz->n][1] = b;
    bz->n++;
}

static void state_err(struct tc *c, const struct topo_event *e, const struct nsim *ns,
                      uint32_t node, const char *what)
{
    char *ts =
        e->at_ns == TOPO_AT_END ? fl_xstrdup("the end of the run") : tc_format_duration(e->at_ns);
    struct fl_buf b = {0};
    if (ns->since) {
        char *ts2 = tc_format_duration(ns->since->at_ns);
        char *see = tc_see(c, ns->since->loc);
        fl_buf_printf(&b, " (since %s at %s, see %s)", ns->since->source, ts2, see);
        free(ts2);
        free(see);
    }
    size_t m = c->path.size;
    fl_buf_puts(&c->path, e->source ? e->source : "");
    fl_buf_printf(&c->path, ".%s",
                  e->kind == TOPO_EV_CHECK ? "node" : topo_event_kind_name(e->kind));
    tc_err_loc(c, e->loc.line, e->loc.col, "'%s' is %s at %s%s; %s", c->s->nodes[node].name,
               nstate_names[ns->st], ts, b.data ? b.data : "", what);
    tc_path_pop(c, m);
    fl_buf_free(&b);
    free(ts);
}

void tc_simulate_static(struct tc *c)
{
    struct topo_scenario *s = c->s;
    struct nsim *ns = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*ns));
    c->busy = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*c->busy));
    bool *link_active = fl_xcalloc(s->n_links ? s->n_links : 1, sizeof(bool));
    size_t total_disks = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        total_disks += s->nodes[i].n_disks;
    }
    bool **disk_active = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*disk_active));
    for (size_t i = 0; i < s->n_nodes; i++) {
        disk_active[i] = fl_xcalloc(s->nodes[i].n_disks ? s->nodes[i].n_disks : 1, sizeof(bool));
    }
    /* Active static partitions: by pid and item. */
    size_t n_active = 0, alloc_active = 0;
    struct {
        uint32_t pid;
        size_t item;
    } *active = NULL;

    for (size_t i = 0; i < c->n_events; i++) {
        const struct topo_event *e = &c->events[i];
        const struct tc_evx *x = &c->evx[i];
        if (!x->is_static) {
            continue;
        }
        switch (e->kind) {
        case TOPO_EV_CRASH:
        case TOPO_EV_RESTART:
        case TOPO_EV_SHUTDOWN:
        case TOPO_EV_PAUSE:
        case TOPO_EV_RESUME:
        case TOPO_EV_REBOOT: {
            uint32_t n = e->u.node.node;
            struct nsim *st = &ns[n];
            enum nstate to = st->st;
            bool bad = false;
            const char *why = NULL;
            switch (e->kind) {
            case TOPO_EV_CRASH:
                bad = st->st == NS_CRASHED || st->st == NS_STOPPED;
                why = "crash needs a running or paused node";
                to = NS_CRASHED;
                break;
            case TOPO_EV_RESTART:
                bad = st->st != NS_CRASHED && st->st != NS_STOPPED;
                why = "restart needs a crashed or shut down node";
                to = NS_RUNNING;
                break;
            case TOPO_EV_SHUTDOWN:
                bad = st->st != NS_RUNNING;
                why = "shutdown needs a running node";
                to = NS_STOPPED;
                break;
            case TOPO_EV_PAUSE:
                bad = st->st != NS_RUNNING;
                why = "pause needs a running node";
                to = NS_PAUSED;
                break;
            case TOPO_EV_RESUME:
                bad = st->st != NS_PAUSED;
                why = "resume needs a paused node";
                to = NS_RUNNING;
                break;
            default: /* REBOOT */
                bad = st->st != NS_RUNNING;
                why = "reboot needs a running node";
                break;
            }
            if (bad) {
                state_err(c, e, st, n, why);
                break;
            }
            busy_add(c, n, e->at_ns, e->at_ns);
            if (to != st->st) {
                if (st->st == NS_RUNNING) {
                    st->down_at = e->at_ns;
                } else if (to == NS_RUNNING) {
                    busy_add(c, n, st->down_at, e->at_ns);
                }
                st->st = to;
                st->since = e;
            }
            break;
        }
        case TOPO_EV_CLOCK:
        case TOPO_EV_EXEC:
        case TOPO_EV_WAIT:
        case TOPO_EV_CHECK: {
            uint32_t n = e->kind == TOPO_EV_CLOCK  ? e->u.clock.node
                         : e->kind == TOPO_EV_EXEC ? e->u.exec.node
                         : e->kind == TOPO_EV_WAIT ? e->u.wait.node
                                                   : s->checks[e->u.check].node;
            if (ns[n].st != NS_RUNNING) {
                state_err(c, e, &ns[n], n,
                          e->kind == TOPO_EV_CLOCK ? "setting a clock needs a running node"
                                                   : "running a command needs a running node");
            }
            busy_add(c, n, e->at_ns, e->at_ns + x->extent);
            break;
        }
        case TOPO_EV_PARTITION:
            active = fl_xgrow(active, &alloc_active, n_active + 1, sizeof(*active));
            active[n_active].pid = x->pid;
            active[n_active].item = x->item;
            n_active++;
            break;
        case TOPO_EV_HEAL: {
            const struct tc_item *it = x->item != SIZE_MAX ? &c->items[x->item] : NULL;
            size_t before = n_active;
            size_t w = 0;
            for (size_t a = 0; a < n_active; a++) {
                bool heal;
                if (x->heal_pid) {
                    heal = active[a].pid == x->pid;
                } else if (it && it->heal_all) {
                    heal = true;
                } else {
                    heal = false;
                    for (size_t h = 0; it && h < it->n_heal; h++) {
                        heal = heal || active[a].item == it->heal_items[h];
                    }
                }
                if (!heal) {
                    active[w++] = active[a];
                }
            }
            n_active = w;
            /* heal: all as a safety net after a nemesis is fine: the
             * nemesis' partitions are not known here. */
            bool nemesis = ty_map_get(c->root, "nemesis") != NULL;
            if (w == before && !x->heal_pid && !(nemesis && it && it->heal_all)) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "heal: nothing to heal at %s (%s is in force)", ts,
                           it && it->heal_all ? "no partition" : "no partition it names");
                tc_path_pop(c, m);
                free(ts);
            }
            break;
        }
        case TOPO_EV_LINK_SET:
            for (size_t k = 0; k < e->u.link.n_changes; k++) {
                link_active[e->u.link.changes[k].link] = true;
            }
            break;
        case TOPO_EV_LINK_CLEAR: {
            bool any = false;
            for (size_t k = 0; k < e->u.link.n_changes; k++) {
                any = any || link_active[e->u.link.changes[k].link];
                link_active[e->u.link.changes[k].link] = false;
            }
            if (!any && e->origin != TOPO_ORIGIN_REVERT) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "link-clear: no link event changed '%s' before %s, so there is "
                           "nothing to clear",
                           e->u.link.label, ts);
                tc_path_pop(c, m);
                free(ts);
            }
            break;
        }
        case TOPO_EV_DISK_SET:
            disk_active[e->u.disk.node][e->u.disk.disk] = true;
            break;
        case TOPO_EV_DISK_CLEAR:
            if (!disk_active[e->u.disk.node][e->u.disk.disk] && e->origin != TOPO_ORIGIN_REVERT) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "disk-clear: no disk event changed disk '%s' of node '%s' before %s, "
                           "so there is nothing to clear",
                           s->nodes[e->u.disk.node].disks[e->u.disk.disk].name,
                           s->nodes[e->u.disk.node].name, ts);
                tc_path_pop(c, m);
                free(ts);
            }
            disk_active[e->u.disk.node][e->u.disk.disk] = false;
            busy_add(c, e->u.disk.node, e->at_ns, e->at_ns);
            break;
        default:
            break;
        }
    }
    /* Checks at the end need their node running then. */
    for (size_t k = 0; k < s->n_checks; k++) {
        const struct topo_check *ck = &s->checks[k];
        if (ck->at_ns != TOPO_AT_END || ns[ck->node].st == NS_RUNNING) {
            continue;
        }
        struct topo_event fake = {.kind = TOPO_EV_CHECK, .at_ns = TOPO_AT_END, .loc = ck->loc};
        fake.source = fl_xasprintf("checks[%zu]", k);
        state_err(c, &fake, &ns[ck->node], ck->node,
                  "a check at the end runs a command, which needs a running node");
        free(fake.source);
    }
    for (size_t n = 0; n < s->n_nodes; n++) {
        if (ns[n].st != NS_RUNNING) {
            busy_add(c, (uint32_t)n, ns[n].down_at, INT64_MAX);
        }
    }
    free(active);
    free(link_active);
    for (size_t i = 0; i < s->n_nodes; i++) {
        free(disk_active[i]);
    }
    free(disk_active);
    free(ns);
    (void)total_disks;
}

void tc_expand_timeline(struct tc *c)
{
    expand_items(c);
    tc_sort_events(c);
    tc_simulate_static(c);
}
