/* From items to the ordered event list: each item's time resolved (an
 * `after` chain, with cycles and unknown names reported), every item
 * expanded into concrete events (every/for/times, reverts of durations,
 * partition cut sets, link and disk parameter sets), and the events
 * sorted by time, then group, `after` depth, declaration and order. */
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"

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
    size_t ti = tc_keyset_find(&c->item_names, it->after_name, strlen(it->after_name));
    struct tc_item *target = ti == TC_KEYSET_NONE ? NULL : &c->items[ti];
    size_t m = tc_path_key(c, where);
    tc_path_index(c, it->index);
    tc_path_key(c, "after");
    bool ok = false;
    if (!target) {
        /* The suggestion scans every name: skipped once the message would
         * be dropped anyway (past TC_MAX_ERRORS). */
        const char *sugg = NULL;
        if (c->n_diags < TC_MAX_ERRORS) {
            const char **names = fl_xcalloc(c->n_items + 1, sizeof(*names));
            size_t nn = 0;
            for (size_t i = 0; i < c->n_items; i++) {
                if (c->items[i].name) {
                    names[nn++] = c->items[i].name;
                }
            }
            sugg = tc_suggest(it->after_name, names, nn);
            free(names);
        }
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
    TOPO_EV_NODE_CASES:
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

void tc_expand_timeline(struct tc *c)
{
    expand_items(c);
    tc_sort_events(c);
    tc_simulate_static(c);
}
