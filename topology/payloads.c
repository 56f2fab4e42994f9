/* The payload of each timeline event kind (the value of its kind key):
 * partition/isolate (groups, shapes, candidates), heal, link and
 * link-clear, the node operations, clock, disk and disk-clear, exec and
 * wait, mark; and the `exit`/`output` expectations of exec and checks. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"
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

bool tc_parse_heal(struct tc *c, struct tc_item *it, const struct ty_node *v)
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

/* The payload of an item (the value of its kind key), by kind.  The
 * caller has pushed the kind key on the path. */
bool tc_parse_payload(struct tc *c, struct tc_item *it)
{
    const struct ty_node *kv = it->kind_val;
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
    TOPO_EV_NODE_CASES:
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
    return r;
}
