/* nemesis: random fault schedules drawn from the seed, and the final pass
 * over the merged timeline (partition states, clock offsets).
 *
 * One schedule, with its own PRNG seeded (run seed,
 * impair_stream_id("nemesis:<name>")):
 *
 *   t = start
 *   repeat:  t += U[every]          (start-to-start spacing, whole ms)
 *            d  = U[duration]
 *            stop when t + d >= stop
 *            fault kind = U{faults}  (partition: a shape U{shapes that fit})
 *            targets (shuffles, node picks) drawn from the same PRNG
 *            emit the fault at t and its undo at t + d
 *
 * Node faults (crash, pause, reboot, clock) only pick nodes that are
 * running and untouched by any other event during [t, t + d]; with none
 * eligible the draw is skipped (counted), so a schedule can never
 * contradict the timeline, and the same seed gives the same list.
 */
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"

static const char *const nemesis_keys[] = {"faults", "every", "duration",   "start",
                                           "stop",   "nodes", "clock-skew", NULL};

enum nfault {
    NF_PARTITION,
    NF_HALVES,
    NF_MAJORITY_MINORITY,
    NF_ISOLATE,
    NF_RING,
    NF_BRIDGE,
    NF_ONE_WAY,
    NF_CRASH,
    NF_PAUSE,
    NF_REBOOT,
    NF_CLOCK,
    NF__COUNT
};
static const char *const nfault_names[NF__COUNT] = {
    "partition", "halves", "majority-minority",
    "isolate",   "ring",   "bridge",
    "one-way",   "crash",  "pause",
    "reboot",    "clock",
};

/* Uniform in [lo, hi] with millisecond granularity (times a person reads). */
static int64_t uniform(struct impair_rng *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    uint64_t steps = (uint64_t)(hi - lo) / (uint64_t)FL_NS_PER_MS;
    return lo + (int64_t)impair_rng_below(rng, steps + 1) * FL_NS_PER_MS;
}

static bool node_free(struct tc *c, uint32_t node, int64_t a, int64_t b)
{
    const struct tc_busy *bz = &c->busy[node];
    c->work += bz->n;
    for (size_t i = 0; i < bz->n; i++) {
        if (bz->iv[i][0] <= b && a <= bz->iv[i][1]) {
            return false;
        }
    }
    return true;
}

static void busy(struct tc *c, uint32_t node, int64_t a, int64_t b)
{
    struct tc_busy *bz = &c->busy[node];
    bz->iv = fl_xgrow(bz->iv, &bz->alloc, bz->n + 1, sizeof(*bz->iv));
    bz->iv[bz->n][0] = a;
    bz->iv[bz->n][1] = b;
    bz->n++;
}

static enum topo_partition_shape shape_of(enum nfault f)
{
    switch (f) {
    case NF_HALVES:
        return TOPO_SHAPE_HALVES;
    case NF_MAJORITY_MINORITY:
        return TOPO_SHAPE_MAJORITY_MINORITY;
    case NF_ISOLATE:
        return TOPO_SHAPE_ISOLATE;
    case NF_RING:
        return TOPO_SHAPE_RING;
    default:
        return TOPO_SHAPE_BRIDGE;
    }
}

static struct topo_event *add(struct tc *c, enum topo_event_kind kind, int64_t at,
                              const struct topo_nemesis *nm, size_t idx, uint32_t *sub, size_t k)
{
    struct tc_evkey key = {.group = 1, .rank = 0, .decl = (uint32_t)idx, .sub = (*sub)++};
    struct topo_event *e = tc_add_event(c, kind, TOPO_ORIGIN_NEMESIS, at, &key);
    if (!e) {
        return NULL;
    }
    e->loc = nm->loc;
    e->source = fl_xasprintf("nemesis.%s #%zu", nm->name, k);
    c->evx[c->n_events - 1].is_static = false;
    return e;
}

static void expand(struct tc *c, struct topo_nemesis *nm, size_t idx, const int *faults,
                   size_t n_faults, int64_t skew_max)
{
    struct topo_scenario *s = c->s;
    struct impair_rng rng;
    impair_rng_seed(&rng, s->seed, nm->stream);
    int64_t t = nm->start_ns;
    uint32_t sub = 0;
    size_t k = 0;
    uint32_t *cand = fl_xcalloc(nm->n_nodes ? nm->n_nodes : 1, sizeof(*cand));
    for (;;) {
        t += uniform(&rng, nm->every_min_ns, nm->every_max_ns);
        int64_t d = uniform(&rng, nm->duration_min_ns, nm->duration_max_ns);
        if (t + d >= nm->stop_ns || c->too_many_events) {
            break;
        }
        k++;
        enum nfault f = (enum nfault)faults[impair_rng_below(&rng, n_faults)];
        if (f == NF_PARTITION) {
            enum nfault fit[5];
            size_t nfit = 0;
            for (int g = NF_HALVES; g <= NF_BRIDGE; g++) {
                if (nm->n_nodes >= tc_shape_min_nodes(shape_of((enum nfault)g))) {
                    fit[nfit++] = (enum nfault)g;
                }
            }
            f = fit[impair_rng_below(&rng, nfit)];
        }
        switch (f) {
        case NF_HALVES:
        case NF_MAJORITY_MINORITY:
        case NF_ISOLATE:
        case NF_RING:
        case NF_BRIDGE:
        case NF_ONE_WAY: {
            struct tc_cuts cuts = {0};
            char *label = NULL;
            enum topo_partition_shape shape = TOPO_SHAPE_ONE_WAY;
            if (f == NF_ONE_WAY) {
                uint32_t x = nm->nodes[impair_rng_below(&rng, nm->n_nodes)];
                bool out = impair_rng_below(&rng, 2) == 0;
                size_t no = 0;
                for (size_t i = 0; i < nm->n_nodes; i++) {
                    if (nm->nodes[i] != x) {
                        cand[no++] = nm->nodes[i];
                    }
                }
                struct fl_buf b = {0};
                if (out) {
                    tc_cuts_between(&cuts, &x, 1, cand, no, false);
                    fl_buf_printf(&b, "one-way: %s ->", s->nodes[x].name);
                } else {
                    tc_cuts_between(&cuts, cand, no, &x, 1, false);
                    fl_buf_puts(&b, "one-way:");
                }
                for (size_t i = 0; i < no; i++) {
                    fl_buf_printf(&b, " %s", s->nodes[cand[i]].name);
                }
                if (!out) {
                    fl_buf_printf(&b, " -> %s", s->nodes[x].name);
                }
                label = fl_buf_steal(&b);
                tc_cuts_sort(&cuts);
            } else {
                shape = shape_of(f);
                tc_shape_cuts(s, shape, nm->nodes, nm->n_nodes, -1, &rng, &cuts, &label);
            }
            uint32_t pid = c->next_pid++;
            struct topo_event *e = add(c, TOPO_EV_PARTITION, t, nm, idx, &sub, k);
            if (!e) {
                free(cuts.v);
                free(label);
                break;
            }
            e->u.partition.shape = shape;
            e->u.partition.label = label;
            e->u.partition.cuts = cuts.v;
            e->u.partition.n_cuts = cuts.n;
            c->work += cuts.n;
            c->evx[c->n_events - 1].pid = pid;
            e = add(c, TOPO_EV_HEAL, t + d, nm, idx, &sub, k);
            if (e) {
                e->u.partition.label = fl_xasprintf("heal %s", label);
                c->evx[c->n_events - 1].pid = pid;
                c->evx[c->n_events - 1].heal_pid = true;
            }
            break;
        }
        default: {
            size_t nc = 0;
            for (size_t i = 0; i < nm->n_nodes; i++) {
                if (node_free(c, nm->nodes[i], t, t + d)) {
                    cand[nc++] = nm->nodes[i];
                }
            }
            if (!nc) {
                nm->n_skipped++;
                break;
            }
            uint32_t x = cand[impair_rng_below(&rng, nc)];
            busy(c, x, t, t + d);
            if (f == NF_CLOCK) {
                int64_t v = uniform(&rng, -skew_max, skew_max);
                if (v == 0) {
                    v = skew_max;
                }
                uint32_t cid = c->next_cid++;
                struct topo_event *e = add(c, TOPO_EV_CLOCK, t, nm, idx, &sub, k);
                if (e) {
                    e->u.clock.node = x;
                    c->evx[c->n_events - 1].cid = cid;
                    c->evx[c->n_events - 1].clock_val = v;
                }
                e = add(c, TOPO_EV_CLOCK, t + d, nm, idx, &sub, k);
                if (e) {
                    e->u.clock.node = x;
                    c->evx[c->n_events - 1].cid = cid;
                    c->evx[c->n_events - 1].clock_revert = true;
                }
                break;
            }
            enum topo_event_kind k1 = f == NF_CRASH   ? TOPO_EV_CRASH
                                      : f == NF_PAUSE ? TOPO_EV_PAUSE
                                                      : TOPO_EV_REBOOT;
            struct topo_event *e = add(c, k1, t, nm, idx, &sub, k);
            if (e) {
                e->u.node.node = x;
            }
            if (f != NF_REBOOT) {
                e = add(c, f == NF_CRASH ? TOPO_EV_RESTART : TOPO_EV_RESUME, t + d, nm, idx, &sub,
                        k);
                if (e) {
                    e->u.node.node = x;
                }
            }
            break;
        }
        }
        nm->n_drawn++;
    }
    free(cand);
}

void tc_parse_nemesis(struct tc *c, const struct ty_node *n)
{
    struct topo_scenario *s = c->s;
    if (!n || ty_is_null(n)) {
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, n, "nemesis", TY_MAP,
                          "a mapping of schedule names to schedules "
                          "(e.g. {chaos: {faults: [partition], every: 10s-20s}})",
                          &m0)) {
        return;
    }
    s->nemeses = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*s->nemeses));
    struct tc_keyset names = {0};
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        size_t m = tc_path_keyn(c, k);
        if (!tc_name(c, k, 64, "nemesis name") ||
            !tc_check_map(c, v, nemesis_keys, "a nemesis (faults, every, duration, ...)")) {
            tc_path_pop(c, m);
            continue;
        }
        if (tc_defined_twice(c, &names, k)) {
            tc_path_pop(c, m);
            continue;
        }
        struct topo_nemesis nm = {0};
        nm.loc = tc_loc(k);
        bool ok = true;
        int faults[64];
        size_t n_faults = 0;
        const struct ty_node *fn = ty_map_get(v, "faults");
        if (!fn) {
            tc_err(c, v, "a nemesis needs 'faults' (e.g. [partition, crash])");
            ok = false;
        } else {
            size_t mk = tc_path_key(c, "faults");
            const struct ty_node *const *list =
                fn->type == TY_SEQ ? (const struct ty_node *const *)fn->items : &fn;
            size_t nl = fn->type == TY_SEQ ? fn->n_items : 1;
            if (fn->type == TY_MAP || !nl || ty_is_null(fn)) {
                tc_err_val(c, fn,
                           "is not a fault kind or a list of them (valid: partition, "
                           "halves, majority-minority, isolate, ring, bridge, one-way, "
                           "crash, pause, reboot, clock)");
                ok = false;
                nl = 0;
            }
            for (size_t j = 0; j < nl && n_faults < 64; j++) {
                size_t mj = fn->type == TY_SEQ ? tc_path_index(c, j) : c->path.size;
                int e;
                if (tc_enum(c, list[j], nfault_names, NF__COUNT, &e)) {
                    faults[n_faults++] = e;
                } else {
                    ok = false;
                }
                tc_path_pop(c, mj);
            }
            tc_path_pop(c, mk);
        }
        const struct ty_node *x;
        nm.every_min_ns = nm.every_max_ns = 0;
        if (!(x = ty_map_get(v, "every"))) {
            tc_err(c, v, "a nemesis needs 'every' (the spacing of its faults, e.g. 10s-20s)");
            ok = false;
        } else {
            size_t mk = tc_path_key(c, "every");
            if (tc_duration_range(c, x, &nm.every_min_ns, &nm.every_max_ns)) {
                if (nm.every_min_ns < 100 * FL_NS_PER_MS) {
                    tc_err_val(c, x, "is too short a spacing (valid: 100ms or more)");
                    ok = false;
                }
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        nm.duration_min_ns = nm.duration_max_ns = nm.every_min_ns / 2;
        if ((x = ty_map_get(v, "duration"))) {
            size_t mk = tc_path_key(c, "duration");
            if (tc_duration_range(c, x, &nm.duration_min_ns, &nm.duration_max_ns)) {
                if (nm.duration_min_ns <= 0) {
                    tc_err_val(c, x, "is not a fault duration (valid: more than 0s)");
                    ok = false;
                } else if (ok && nm.duration_max_ns >= nm.every_min_ns) {
                    tc_err_val(c, x,
                               "is not shorter than the smallest spacing (every); faults of "
                               "one nemesis would overlap");
                    ok = false;
                }
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        nm.start_ns = 0;
        nm.stop_ns = s->duration_ns;
        if ((x = ty_map_get(v, "start"))) {
            size_t mk = tc_path_key(c, "start");
            ok = tc_duration(c, x, &nm.start_ns) && ok;
            tc_path_pop(c, mk);
        }
        if ((x = ty_map_get(v, "stop"))) {
            size_t mk = tc_path_key(c, "stop");
            if (tc_duration(c, x, &nm.stop_ns)) {
                if (nm.stop_ns > s->duration_ns) {
                    char *ds = tc_format_duration(s->duration_ns);
                    tc_err_val(c, x, "is after the end of the run (run.duration: %s)", ds);
                    free(ds);
                    ok = false;
                }
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        if (ok && nm.start_ns >= nm.stop_ns) {
            tc_err(c, ty_map_get(v, "start") ? ty_map_get(v, "start") : v,
                   "the nemesis window is empty: start is not before stop");
            ok = false;
        }
        int64_t skew = 10 * FL_NS_PER_SEC;
        if ((x = ty_map_get(v, "clock-skew"))) {
            size_t mk = tc_path_key(c, "clock-skew");
            if (tc_duration(c, x, &skew)) {
                if (skew <= 0) {
                    tc_err_val(c, x, "is not a clock skew bound (valid: more than 0s)");
                    ok = false;
                }
            } else {
                ok = false;
            }
            tc_path_pop(c, mk);
        }
        if ((x = ty_map_get(v, "nodes"))) {
            size_t mk = tc_path_key(c, "nodes");
            nm.nodes = tc_node_list(c, x, &nm.n_nodes);
            ok = nm.nodes && ok;
            tc_path_pop(c, mk);
        } else {
            nm.n_nodes = s->n_nodes;
            nm.nodes = fl_xcalloc(nm.n_nodes ? nm.n_nodes : 1, sizeof(uint32_t));
            for (size_t j = 0; j < nm.n_nodes; j++) {
                nm.nodes[j] = (uint32_t)j;
            }
        }
        for (size_t j = 0; ok && j < n_faults; j++) {
            size_t need = 1;
            if (faults[j] == NF_PARTITION || faults[j] == NF_ONE_WAY) {
                need = 2;
            } else if (faults[j] >= NF_HALVES && faults[j] <= NF_BRIDGE) {
                need = tc_shape_min_nodes(shape_of((enum nfault)faults[j]));
            }
            if (nm.n_nodes < need) {
                size_t mk = tc_path_key(c, "faults");
                tc_err(c, fn, "fault '%s' needs at least %zu nodes, but the nemesis has %zu",
                       nfault_names[faults[j]], need, nm.n_nodes);
                tc_path_pop(c, mk);
                ok = false;
            }
        }
        nm.name = fl_xstrdup(k->str);
        char *stream = fl_xasprintf("nemesis:%s", k->str);
        nm.stream = impair_stream_id(stream);
        free(stream);
        nm.n_faults = n_faults;
        nm.faults = fl_xcalloc(n_faults ? n_faults : 1, sizeof(char *));
        for (size_t j = 0; j < n_faults; j++) {
            nm.faults[j] = fl_xstrdup(nfault_names[faults[j]]);
        }
        size_t idx = s->n_nemeses++;
        s->nemeses[idx] = nm;
        tc_define(&names, k);
        if (ok && c->busy) {
            expand(c, &s->nemeses[idx], idx, faults, n_faults, skew);
        }
        tc_path_pop(c, m);
    }
    tc_keyset_free(&names);
    tc_path_pop(c, m0);
}

/* ------------------------------------------------------------------ */
/* Final pass: the complete cut set after each partition/heal, and each */
/* clock event's resulting offset.                                      */
/* ------------------------------------------------------------------ */

struct inst {
    uint32_t pid;
    size_t item;
    const struct topo_event *ev;
};

/* The union of the active partitions' cuts, sorted, without duplicates;
 * false when the work budget is spent. */
static bool union_of(struct tc *c, const struct inst *a, size_t n, struct tc_cuts *out)
{
    for (size_t i = 0; i < n; i++) {
        const struct topo_ev_partition *p = &a[i].ev->u.partition;
        c->work += p->n_cuts;
        if (c->work > TC_MAX_WORK) {
            return false;
        }
        out->v = fl_xgrow(out->v, &out->alloc, out->n + p->n_cuts, sizeof(*out->v));
        memcpy(out->v + out->n, p->cuts, p->n_cuts * sizeof(*out->v));
        out->n += p->n_cuts;
    }
    tc_cuts_sort(out);
    return true;
}

/* Is x in the sorted cut list? */
static bool in_cuts(const struct tc_cuts *c, struct topo_cut x)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct topo_cut *m = &c->v[mid];
        if (m->src == x.src && m->dst == x.dst) {
            return true;
        }
        if (m->src < x.src || (m->src == x.src && m->dst < x.dst)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

void tc_finish_timeline(struct tc *c)
{
    struct topo_scenario *s = c->s;
    struct inst *act = fl_xcalloc(c->n_events ? c->n_events : 1, sizeof(*act));
    size_t n_act = 0;
    int64_t *offset = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*offset));
    /* Per clock instance: the offset before it, which its undo restores. */
    int64_t *cbefore = fl_xcalloc(c->next_cid ? c->next_cid : 1, sizeof(*cbefore));
    for (size_t i = 0; i < c->n_events; i++) {
        struct topo_event *e = &c->events[i];
        const struct tc_evx *x = &c->evx[i];
        e->seq = (uint32_t)i;
        if (e->kind == TOPO_EV_PARTITION || e->kind == TOPO_EV_HEAL) {
            struct tc_cuts before = {0};
            if (!union_of(c, act, n_act, &before)) {
                free(before.v);
                c->too_many_events = true;
                break;
            }
            if (e->kind == TOPO_EV_PARTITION) {
                act[n_act].pid = x->pid;
                act[n_act].item = x->item;
                act[n_act].ev = e;
                n_act++;
            } else {
                const struct tc_item *it = x->item != SIZE_MAX ? &c->items[x->item] : NULL;
                size_t w = 0;
                for (size_t a = 0; a < n_act; a++) {
                    bool heal;
                    if (x->heal_pid) {
                        heal = act[a].pid == x->pid;
                    } else if (!it || it->heal_all) {
                        heal = true;
                    } else {
                        heal = false;
                        for (size_t h = 0; h < it->n_heal; h++) {
                            heal = heal || act[a].item == it->heal_items[h];
                        }
                    }
                    if (!heal) {
                        act[w++] = act[a];
                    }
                }
                n_act = w;
            }
            struct tc_cuts after = {0};
            if (!union_of(c, act, n_act, &after)) {
                free(before.v);
                free(after.v);
                c->too_many_events = true;
                break;
            }
            e->u.partition.state = after.v;
            e->u.partition.n_state = after.n;
            if (e->kind == TOPO_EV_HEAL) {
                struct tc_cuts healed = {0};
                for (size_t k = 0; k < before.n; k++) {
                    if (!in_cuts(&after, before.v[k])) {
                        healed.v =
                            fl_xgrow(healed.v, &healed.alloc, healed.n + 1, sizeof(*healed.v));
                        healed.v[healed.n++] = before.v[k];
                    }
                }
                e->u.partition.cuts = healed.v;
                e->u.partition.n_cuts = healed.n;
            }
            free(before.v);
        } else if (e->kind == TOPO_EV_RESTART || e->kind == TOPO_EV_REBOOT) {
            /* A booting guest reads true time from the (emulated) RTC. */
            offset[e->u.node.node] = 0;
        } else if (e->kind == TOPO_EV_CLOCK) {
            uint32_t n = e->u.clock.node;
            int64_t cur = offset[n], next;
            if (x->clock_revert) {
                next = cbefore[x->cid];
            } else if (x->clock_abs) {
                next = x->clock_val;
            } else {
                next = cur + x->clock_val;
            }
            if (!x->clock_revert) {
                cbefore[x->cid] = cur;
            }
            e->u.clock.offset_ns = next;
            e->u.clock.delta_ns = next - cur;
            offset[n] = next;
        }
    }
    free(act);
    free(offset);
    free(cbefore);
}
