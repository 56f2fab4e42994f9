/* timeline: and checks: — the item grammar: each list item's kind (one
 * kind key), its name and its timing keys (at, after, every, for, times,
 * duration).  The pipeline after it:
 *
 *   timeline.c (items) ─▶ payloads.c (each kind's value) ─▶ expand.c (times
 *   resolved, items expanded into events, sorted) ─▶ simulate.c (node states
 *   along the sorted timeline: contradictions are errors)
 */
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"

/* The key that names an item's kind, and the kind: one row each. */
static const struct {
    const char *key;
    enum topo_event_kind kind;
} kind_keys[] = {
    {"partition", TOPO_EV_PARTITION},
    {"isolate", TOPO_EV_PARTITION},
    {"heal", TOPO_EV_HEAL},
    {"link", TOPO_EV_LINK_SET},
    {"link-clear", TOPO_EV_LINK_CLEAR},
    {"crash", TOPO_EV_CRASH},
    {"restart", TOPO_EV_RESTART},
    {"shutdown", TOPO_EV_SHUTDOWN},
    {"pause", TOPO_EV_PAUSE},
    {"resume", TOPO_EV_RESUME},
    {"reboot", TOPO_EV_REBOOT},
    {"clock", TOPO_EV_CLOCK},
    {"disk", TOPO_EV_DISK_SET},
    {"disk-clear", TOPO_EV_DISK_CLEAR},
    {"exec", TOPO_EV_EXEC},
    {"mark", TOPO_EV_MARK},
    {"wait", TOPO_EV_WAIT},
};
static const char *const timing_keys[] = {"at",    "after",    "every", "for",
                                          "times", "duration", "name"};

/* Registers a named item in `names` and reports every earlier item of
 * the same name, in declaration order ("is the name of another event
 * too").  Returns how many there were. */
static size_t same_name(struct tc *c, struct tc_keyset *names, const struct tc_item *items,
                        struct tc_item *it, const char *what)
{
    it->prev_same_name = tc_keyset_put(names, it->name, strlen(it->name), (size_t)(it - items));
    size_t n = it->prev_same_name == TC_KEYSET_NONE ? 0 : items[it->prev_same_name].n_same_name + 1;
    it->n_same_name = n;
    if (c->n_diags >= TC_MAX_ERRORS) {
        c->n_dropped += n; /* what tc_err_val would drop, without the work */
        return n;
    }
    size_t *earlier = fl_xcalloc(n ? n : 1, sizeof(*earlier));
    size_t k = n;
    for (size_t j = it->prev_same_name; j != TC_KEYSET_NONE; j = items[j].prev_same_name) {
        earlier[--k] = j;
    }
    for (size_t i = 0; i < n; i++) {
        char *see = tc_see(c, tc_loc(items[earlier[i]].name_node));
        tc_err_val(c, it->name_node, "is the name of another %s too (at %s)", what, see);
        free(see);
    }
    free(earlier);
    return n;
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
    static const char *allowed[FL_ARRAY_LEN(kind_keys) + FL_ARRAY_LEN(timing_keys) + 1];
    size_t na = 0;
    for (size_t i = 0; i < FL_ARRAY_LEN(timing_keys); i++) {
        allowed[na++] = timing_keys[i];
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(kind_keys); i++) {
        allowed[na++] = kind_keys[i].key;
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
        for (size_t j = 0; j < FL_ARRAY_LEN(kind_keys); j++) {
            if (strcmp(k->str, kind_keys[j].key)) {
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
                it->kind = kind_keys[j].kind;
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
            it->name = fl_xstrdup(name->str);
            it->name_node = name;
            same_name(c, &c->item_names, c->items, it, "event");
        }
        tc_path_pop(c, m);
    }
    bool ok = parse_timing(c, it, v);
    size_t m = tc_path_keyn(c, it->kind_key);
    bool r = tc_parse_payload(c, it);
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
            for (size_t q = 0; k->type == TY_SCALAR && q < FL_ARRAY_LEN(kind_keys); q++) {
                if (!strcmp(k->str, kind_keys[q].key) && !c->items[i].kind_key) {
                    c->items[i].kind = kind_keys[q].kind;
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
            it->ok = tc_parse_heal(c, it, it->kind_val) && it->ok;
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
    struct tc_keyset check_names = {0};
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
                it->name = fl_xstrdup(s);
                it->name_node = x;
                ok = !same_name(c, &check_names, c->citems, it, "check") && ok;
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
    tc_keyset_free(&check_names);
    tc_path_pop(c, m0);
}
